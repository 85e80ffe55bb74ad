#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the guest after the suite (tests/guest-suite.sh, when tests/run adds it with
# /install.tar): a system as an install leaves it, unpacked into / over the rig's initramfs.
# On the rig's kernels /install.tar is a `make install DESTDIR=...` staged on the host, on
# Debian's kernels what `apt install` of the packages left in the trixie tree (tests/deb-stock);
# either way with depmod's files and Debian's kmod and systemd-tmpfiles (tests/guest-userland),
# since busybox's modprobe reads no modules.alias. Unloads the rig's module, then, with no
# modprobe of its own, shows that the module loads on first use (docs/autoload.md): right after
# the install, message-slot-static-nodes (as postinst and make install run it) makes the static
# node /dev/message_slot/0 with the udev rule's group and mode, and after the module's removal
# (its file gone, depmod) removes it; after a reboot the boot's services make it again
# (kmod static-nodes, systemd-tmpfiles, as kmod-static-nodes.service and
# systemd-tmpfiles-setup-dev run them); a member of the group message-slot opens a `mknod` node
# of major 235, which makes the kernel run /sbin/modprobe char-major-235-MINOR (kmod) and load
# the installed module; after rmmod the same member runs the example session
# (vm/demo-session.sh's) on the static node, whose first open loads it again; then
# message_slot_stat. The module stays loaded (tests/guest-suite.sh goes on with it). Prints
# PASS/FAIL lines, the kernel's line of each load, and its taint and module-signature messages
# (for the report on signed modules).
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; }
verdict() { if [ "$2" = 0 ]; then pass "$1"; else fail "$1"; fi; }
loaded() { [ -d /sys/module/message_slot ]; }
# The kernel's line of the module's latest load (dmesg: the console shows warnings only).
load_log() { dmesg | grep 'message_slot: registered' | tail -1 | sed 's/^/install: kernel log: /'; }

tar -xf /install.tar -C /
verdict "install: the installed system unpacks into the guest" $?
kver=$(uname -r)
rmmod message_slot && ! loaded
verdict "install: the rig's module unloads" $?

# The tools: make install's in /usr/local/bin, the package's in /usr/bin.
bindir=/usr/local/bin
[ -x $bindir/message_sender ] || bindir=/usr/bin
installed=0
for tool in message_sender message_reader message_slot_stat; do
	[ -x $bindir/$tool ] || installed=1
done
verdict "install: message_sender, message_reader and message_slot_stat are installed ($bindir)" $installed

# The module and its aliases, as depmod listed them; the modprobe the kernel runs is kmod.
modules=/lib/modules/$kver
grep -q '^updates/\(dkms/\)\{0,1\}message_slot\.ko\(\.xz\)\{0,1\}:' $modules/modules.dep &&
	[ "$(readlink /sbin/modprobe)" = kmod ] && /sbin/modprobe --version | grep -q '^kmod version'
verdict "install: depmod lists $modules/updates/.../message_slot.ko; /sbin/modprobe, which the kernel's request_module runs, is Debian's kmod" $?
aliases=$(/sbin/modinfo -F alias message_slot | sort | tr '\n' ' ')
echo "install: modinfo -F alias message_slot: $aliases"
[ "$aliases" = "char-major-235-* char-major-235-0 devname:message_slot/0 " ] &&
	grep -qx 'message_slot message_slot/0 c235:0' $modules/modules.devname
verdict "install: modinfo shows the aliases char-major-235-*, char-major-235-0 and devname:message_slot/0; modules.devname lists message_slot/0 as c235:0" $?

# The group the udev rule and tmpfiles.d name (the package's postinst made it; after a staged
# make install, as docs/install.md says: groupadd), and a member of it.
grep -q '^message-slot:' /etc/group 2>/dev/null || echo 'message-slot:x:999:' >>/etc/group
echo 'slotuser:x:1000:1000::/tmp:/bin/sh' >>/etc/passwd
sed -i 's/^\(message-slot:[^:]*:[0-9]*:\)$/\1slotuser/' /etc/group
member() { su -s /bin/sh slotuser -c "$1"; }
member id | grep -q '(message-slot)'
verdict "install: slotuser is a member of message-slot" $?

# The static node: c 235:0, root:message-slot 0660 (the udev rule's), the module not loaded.
static_node() { # WHEN
	node=$(stat -c '%F %t:%T %u %G %a' /dev/message_slot/0 2>&1)
	echo "install: /dev/message_slot/0 $1: $node"
	[ "$node" = "character special file eb:0 0 message-slot 660" ] && ! loaded
}
listed() { grep message_slot /run/tmpfiles.d/static-nodes.conf; }
# Found on PATH by the helper, as on an installed system (busybox's applets stay first).
PATH=$PATH:/sbin:/usr/bin
helper=/usr/local/lib/message-slot/message-slot-static-nodes
[ -x $helper ] || helper=/usr/lib/message-slot/message-slot-static-nodes
# Right after the install, on a system booted before it: kmod-static-nodes.service listed no
# node of ours (nor did rmmod leave one: devtmpfs removed the rig's module's).
mkdir -p /run/tmpfiles.d && : >/run/tmpfiles.d/static-nodes.conf
[ ! -e /dev/message_slot/0 ] && $helper add && static_node "after message-slot-static-nodes add"
verdict "install: right after the install, message-slot-static-nodes add (postinst, make install) makes the static node" $?
# depmod for this kernel; a staged make install has no modules.order or modules.builtin (their
# warnings are not shown, as make install's depmod -b does not show them).
depmod_kver() {
	out=$(/sbin/depmod "$kver" 2>&1)
	status=$?
	printf '%s\n' "$out" | grep -v 'could not open modules\.\(order\|builtin\)' | grep . >&2
	return $status
}
# The removal: DKMS (make uninstall) deletes the module and runs depmod, then the helper runs.
module_file=$(find $modules/updates -name 'message_slot.ko*')
mv "$module_file" /tmp/ && depmod_kver && $helper remove && [ ! -e /dev/message_slot ] && ! listed
verdict "install: after the module's removal (file gone, depmod), message-slot-static-nodes remove (prerm, make uninstall) leaves no node and no listed static node" $?
mv "/tmp/${module_file##*/}" "$module_file" && depmod_kver && $helper add && static_node "installed again"
verdict "install: installed again, the static node is back" $?

# A reboot: /dev and /run start empty, then kmod-static-nodes.service's command and
# systemd-tmpfiles-setup-dev's.
rm -r /dev/message_slot /run/tmpfiles.d
/sbin/kmod static-nodes --format=tmpfiles --output=/run/tmpfiles.d/static-nodes.conf
echo "install: kmod static-nodes --format=tmpfiles:"
listed | sed 's/^/install:   /'
[ "$(listed)" = "$(printf '%s\n' 'd /dev/message_slot 0755 - - -' 'c! /dev/message_slot/0 0600 - - - 235:0')" ]
verdict "install: at boot kmod static-nodes lists /dev/message_slot (0755) and /dev/message_slot/0 (c 235:0, root's 0600 until tmpfiles.d's line)" $?
/usr/bin/systemd-tmpfiles --prefix=/dev --create --boot
static_node "after systemd-tmpfiles --boot"
verdict "install: at boot systemd-tmpfiles makes the static node with tmpfiles.d's group and mode" $?

# First use through a node made with mknod (minor 7: no class device).
mknod -m 0660 /dev/slot7 c 235 7 && chgrp message-slot /dev/slot7
out=$(member "$bindir/message_sender /dev/slot7 1 'Hello, Slot 7' && $bindir/message_reader /dev/slot7 1")
load_log
[ "$out" = "Hello, Slot 7" ] && loaded
verdict "install: a member's first open of a mknod node (c 235 7) loads the module (modprobe char-major-235-7: alias char-major-235-*); the message goes through" $?
[ -c /dev/message_slot/1 ] && [ -c /dev/message_slot/3 ]
verdict "install: the loaded module made /dev/message_slot/1 .. 3 (devtmpfs; the guest has no udev)" $?
rmmod message_slot && ! loaded && [ -c /dev/message_slot/0 ]
verdict "install: after rmmod the static node /dev/message_slot/0 stays (systemd-tmpfiles made it, not devtmpfs)" $?

# Turned off as docs/autoload.md says: an open fails (ENXIO) and loads nothing.
for line in 'blacklist message_slot' 'install message_slot /bin/false'; do
	mkdir -p /etc/modprobe.d && echo "$line" >/etc/modprobe.d/message-slot.conf
	out=$(member "$bindir/message_sender /dev/message_slot/0 1 x" 2>&1)
	status=$?
	rm /etc/modprobe.d/message-slot.conf
	echo "install: with '$line': $out"
	[ $status != 0 ] && ! loaded
	verdict "install: with '$line' in /etc/modprobe.d/ opening the static node loads nothing" $?
done

# The example session (vm/demo-session.sh's) by the member, on the static node, whose first open loads the
# module again, and a mknod node for slot 1 (the guest has no udev to give the class's node
# /dev/message_slot/1 the group).
mknod -m 0660 /dev/slot1 c 235 1 && chgrp message-slot /dev/slot1
transcript=$(member "
	$bindir/message_sender /dev/message_slot/0 1 'Hello, Slot 1' && $bindir/message_reader /dev/message_slot/0 1 && echo &&
	$bindir/message_sender /dev/slot1 2 'Hello, Slot 2' && $bindir/message_reader /dev/slot1 2 && echo &&
	$bindir/message_reader /dev/message_slot/0 1 && echo &&
	{ $bindir/message_reader /dev/message_slot/0 2 2>/dev/null; echo \"exit \$?\"; }")
load_log
expected=$(printf 'Hello, Slot 1\nHello, Slot 2\nHello, Slot 1\nexit 1')
[ "$transcript" = "$expected" ] && loaded
status=$?
[ $status = 0 ] || printf 'install: got:\n%s\n' "$transcript"
verdict "install: the member's example session through the installed tools; the first open of /dev/message_slot/0 loads the module (modprobe char-major-235-0)" $status
echo "install: kernel taint $(cat /proc/sys/kernel/tainted 2>/dev/null); module signature messages:"
dmesg | grep -iE 'module verification|signature|taint' | sed 's/^/install:   /'
# Slot 0 after the session: one channel, one write of 13 bytes, two reads (the failed read
# of channel 2 is not counted).
slot0=$($bindir/message_slot_stat --json | tr '}' '\n' | grep '"device":"/dev/message_slot/0"')
verdict "install: message_slot_stat reports the session on slot 0" "$(
	for field in '"channels":1' '"bytes":13' '"writes":1' '"reads":2'; do
		case $slot0 in *"$field"*) ;; *) echo 1; exit ;; esac
	done
	echo 0)"
[ -n "$slot0" ] || echo "install: message_slot_stat --json: $($bindir/message_slot_stat --json)"
