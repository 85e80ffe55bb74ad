#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the guest after the suite (tests/guest-suite.sh, when tests/run adds it with
# /install.tar, a `make install DESTDIR=... INSTALL_MODULES_LOAD=1` staged on the host): unpacks
# the installed files into /, unloads the rig's module, loads the installed one by name
# (modprobe through the staged modules.dep, /lib/modules/KVER/updates/) and runs the example
# session of the README through the installed tools in /usr/local/bin. Prints PASS/FAIL lines
# and the kernel's taint and module-signature messages (for the report on signed modules).
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; }
verdict() { if [ "$2" = 0 ]; then pass "$1"; else fail "$1"; fi; }

tar -xf /install.tar -C /
verdict "install: staged tree unpacks into the guest" $?
kver=$(uname -r)
rmmod message_slot
verdict "install: the rig's module unloads" $?
modprobe message_slot
verdict "install: modprobe message_slot loads /lib/modules/$kver/updates/message_slot.ko" \
	"$([ -d /sys/module/message_slot ] && grep -q '^updates/message_slot.ko:' "/lib/modules/$kver/modules.dep" && echo 0 || echo 1)"
echo "install: kernel taint $(cat /proc/sys/kernel/tainted); module signature messages:"
dmesg | grep -iE 'module verification|signature|taint' | sed 's/^/install:   /'
grep -qx message_slot /etc/modules-load.d/message-slot.conf
verdict "install: modules-load.d entry names message_slot" $?

PATH=/usr/local/bin:$PATH
verdict "install: message_sender and message_reader are the installed ones" \
	"$([ "$(command -v message_sender)" = /usr/local/bin/message_sender ] &&
		[ "$(command -v message_reader)" = /usr/local/bin/message_reader ] && echo 0 || echo 1)"
rm -f /dev/slot0 /dev/slot1
mknod -m 0666 /dev/slot0 c 235 0 && mknod -m 0666 /dev/slot1 c 235 1
# The README's session, transcript compared byte for byte.
transcript=$(
	message_sender /dev/slot0 1 "Hello, Slot 1" && message_reader /dev/slot0 1 && echo &&
		message_sender /dev/slot1 2 "Hello, Slot 2" && message_reader /dev/slot1 2 && echo &&
		message_reader /dev/slot0 1 && echo &&
		{ message_reader /dev/slot0 2 2>/dev/null; echo "exit $?"; }
)
expected=$(printf 'Hello, Slot 1\nHello, Slot 2\nHello, Slot 1\nexit 1')
[ "$transcript" = "$expected" ]
status=$?
[ $status = 0 ] || printf 'install: got:\n%s\n' "$transcript"
verdict "install: the example session through the installed tools" $status
