#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The example session (docs/usage.md), run verbatim in the guest by `make demo` (as root, so
# no sudo; the tools are on PATH). Prints each command before running it.
set -e
run() {
	printf '$'
	for arg in "$@"; do
		case $arg in
		*" "*) printf ' "%s"' "$arg" ;;
		*) printf ' %s' "$arg" ;;
		esac
	done
	echo
	"$@"
}
run insmod /message_slot.ko
run mknod /dev/slot0 c 235 0
run mknod /dev/slot1 c 235 1
run chmod 666 /dev/slot0 /dev/slot1
run message_sender /dev/slot0 1 "Hello, Slot 1"
run message_reader /dev/slot0 1
echo
run message_sender /dev/slot1 2 "Hello, Slot 2"
run message_reader /dev/slot1 2
echo
run message_reader /dev/slot0 1
echo
echo "\$ message_reader /dev/slot0 2   # nothing sent on channel 2 yet"
message_reader /dev/slot0 2 || echo "(exit status $?)"
