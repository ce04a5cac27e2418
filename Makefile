# SPDX-License-Identifier: GPL-2.0
#
# usb_vsock: out-of-tree build and the project's checks.
#
#   make [KDIR=<kernel build dir>]   build usb_vsock.ko (default: running kernel)
#   make check                       the test command: lint, KUnit, integration
#   make lint                        checkpatch, kernel-doc, W=1 + sparse builds
#   make kunit                       the KUnit suites in a VM
#   make integration                 the driver against emulated devices in a VM
#   make demo                        a socat session over an emulated device

KDIR ?= /lib/modules/$(shell uname -r)/build

all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean

deps:
	tests/vm/install-deps.sh

lint: deps
	tests/lint.sh

kunit: deps
	tests/vm/kunit.sh

integration: deps
	tests/vm/integration.sh debug
	tests/vm/integration.sh 6.1
	tests/vm/integration.sh 6.12

demo: deps
	tests/vm/demo.sh

check: deps
	tests/check.sh

.PHONY: all modules clean deps lint kunit integration demo check
