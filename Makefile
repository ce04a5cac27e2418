# SPDX-License-Identifier: GPL-2.0
#
# usb_vsock: out-of-tree build and the project's checks.
#
#   make [KDIR=<kernel build dir>]   build usb_vsock.ko (default: running kernel)
#   make install                     modules_install into extra/, then depmod
#   make check                       the test command: lint, KUnit, integration
#   make lint                        checkpatch, kernel-doc, W=1 + sparse builds
#   make kunit                       the KUnit suites in a VM
#   make integration                 the driver against emulated devices in a VM
#   make demo                        a socat session over an emulated device
#   make stress                      long fault and load tests in a VM
#   make bench                       throughput/latency benchmark in a VM

KDIR ?= /lib/modules/$(shell uname -r)/build
# The release of KDIR, for depmod.
KVER ?= $(shell sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' \
	$(KDIR)/include/generated/utsrelease.h 2>/dev/null)

all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean

# Into /lib/modules/$(KVER)/extra (INSTALL_MOD_PATH for a staging root).
install: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules_install
	depmod -a $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) $(KVER)

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

stress: deps
	tests/stress/stress.sh long

check: deps
	tests/check.sh

bench: deps
	tests/bench/bench.sh

.PHONY: all modules clean install deps lint kunit integration demo stress \
	check bench
