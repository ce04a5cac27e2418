#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Scan a VM console log (from run-vm.sh) for kernel splats: KASAN, lockdep,
# BUG, WARN_ON, oops, panic, hung tasks, RCU stalls, kmemleak, UBSAN,
# might_sleep, debug objects, list corruption, refcount errors, and for
# the checkers switching themselves off (lockdep on a non-static key,
# kmemleak), OOM kills, crashed programs and dropped console messages.
#
# usage: check-log.sh LOG
# Prints one "check-log: LOG:LINE: text" per finding; exit 0 if none, 1 if
# any, 2 on usage errors.
#
# Only kernel messages count: run-vm.sh boots with printk.time=1, so they
# carry a "[    1.234567] " stamp, which guest output (markers, echo) lacks.
# The stamp is looked for anywhere in the line because tty output from the
# guest can precede a kernel message on the same console line. The one
# exception is kmemleak's "unreferenced object 0x... (size N):" record,
# whose format nothing else has: it also counts when a guest cats
# /sys/kernel/debug/kmemleak.
# Lines the guest writes to /dev/kmsg are stamped too: keep the words below
# out of them.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 LOG" >&2; exit 2; }
log=$1
[ -r "$log" ] || { echo "check-log: cannot read $log" >&2; exit 2; }

awk -v file="$log" '
BEGIN {
	n = 0
	# Extended regexps matched against the kernel message text.
	pat[++np] = "BUG:"				# KASAN, might_sleep, NULL deref, soft lockup...
	pat[++np] = "kernel BUG at"			# BUG_ON()
	pat[++np] = "^WARNING:"				# WARN_ON(), lockdep, suspicious RCU usage
	pat[++np] = "possible circular locking"
	pat[++np] = "inconsistent lock state"
	pat[++np] = "possible recursive locking"
	pat[++np] = "(^|[^A-Za-z])Oops([^A-Za-z]|$)"
	pat[++np] = "Kernel panic"
	pat[++np] = "general protection fault"
	pat[++np] = "INFO: task .* blocked for more than"
	pat[++np] = "rcu: INFO: .*detected stall"
	pat[++np] = "kmemleak: .*new suspected memory leaks"
	pat[++np] = "unreferenced object"
	pat[++np] = "sleeping function called from invalid context"
	pat[++np] = "UBSAN:"				# CONFIG_UBSAN (bounds, shift)
	pat[++np] = "ODEBUG:"				# DEBUG_OBJECTS: armed timer/work freed...
	pat[++np] = "list_(add|del) corruption"	# DEBUG_LIST
	pat[++np] = "refcount_t: "			# saturated or underflowed refcount
	pat[++np] = "trying to register non-static key"
	pat[++np] = "turning off the locking correctness validator"
	pat[++np] = "kmemleak: .*(disabled|[Ff]ailed|[Cc]annot)"
	pat[++np] = "invoked oom-killer"
	pat[++np] = "Out of memory: Killed process"
	pat[++np] = "Memory cgroup out of memory"
	pat[++np] = "segfault at"			# a test program crashed
	pat[++np] = "BUG kmalloc-"			# SLUB: object corrupted
	pat[++np] = "Freeing .* still in use"
}
{
	sub(/\r+$/, "")
	hit = 0
	if (match($0, /\[ *[0-9]+\.[0-9]+\] /)) {
		msg = substr($0, RSTART + RLENGTH)
		for (i = 1; i <= np; i++)
			if (msg ~ pat[i]) { hit = 1; break }
	}
	if ($0 ~ /unreferenced object 0x[0-9a-f]+ \(size [0-9]+\)/)
		hit = 1
	# printk prints these without a stamp of their own: messages lost
	# to the console may have been the splat.
	if ($0 ~ /printk messages dropped|console messages dropped/)
		hit = 1
	if (hit) {
		printf "check-log: %s:%d: %s\n", file, NR, $0
		n++
	}
}
END {
	if (n) {
		printf "check-log: %d finding(s) in %s\n", n, file
		exit 1
	}
}' "$log"
