#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the guest after the suite (tests/guest-suite.sh, when tests/run adds it with
# /install.tar, a `make install DESTDIR=... INSTALL_MODULES_LOAD=1` staged on the host): unpacks
# the installed files into /, unloads the rig's module, loads the installed one by name
# (modprobe through the staged modules.dep, /lib/modules/KVER/updates/) and runs the example
# session (vm/demo-session.sh's) through the installed tools in /usr/local/bin on the nodes the module
# announces (/dev/message_slot/N), then message_slot_stat. Prints PASS/FAIL lines
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
installed=0
for tool in message_sender message_reader message_slot_stat; do
	[ "$(command -v $tool)" = /usr/local/bin/$tool ] || installed=1
done
verdict "install: message_sender, message_reader and message_slot_stat are the installed ones" $installed
# The example session on the nodes the module announces (devtmpfs; the guest has no udev).
[ -c /dev/message_slot/0 ] && [ -c /dev/message_slot/1 ]
verdict "install: the loaded module made /dev/message_slot/0 and 1" $?
transcript=$(
	message_sender /dev/message_slot/0 1 "Hello, Slot 1" && message_reader /dev/message_slot/0 1 && echo &&
		message_sender /dev/message_slot/1 2 "Hello, Slot 2" && message_reader /dev/message_slot/1 2 && echo &&
		message_reader /dev/message_slot/0 1 && echo &&
		{ message_reader /dev/message_slot/0 2 2>/dev/null; echo "exit $?"; }
)
expected=$(printf 'Hello, Slot 1\nHello, Slot 2\nHello, Slot 1\nexit 1')
[ "$transcript" = "$expected" ]
status=$?
[ $status = 0 ] || printf 'install: got:\n%s\n' "$transcript"
verdict "install: the example session through the installed tools" $status
# Slot 0 after the session: one channel, one write of 13 bytes, two reads (the failed read
# of channel 2 is not counted).
slot0=$(message_slot_stat --json | tr '}' '\n' | grep '"device":"/dev/message_slot/0"')
verdict "install: message_slot_stat reports the session on slot 0" "$(
	for field in '"channels":1' '"bytes":13' '"writes":1' '"reads":2'; do
		case $slot0 in *"$field"*) ;; *) echo 1; exit ;; esac
	done
	echo 0)"
[ -n "$slot0" ] || echo "install: message_slot_stat --json: $(message_slot_stat --json)"
