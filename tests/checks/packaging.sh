# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# The packaging checks of tests/run (sourced by it; they use its `check`): on stock-* kernels
# the Debian packages and the module DKMS builds from them, on every kernel `make install`,
# `make install-dkms`, the manual pages and dkms-build's refusals and warnings.

# The Debian packages, built, installed, removed and purged in the trixie tree against
# stock-* kernel VARIANT (into DEB_OUT: tests/deb-stock), and the module DKMS built and
# installed from them.
#   packaging_checks_debian VARIANT DEB_OUT
packaging_checks_debian() {
	local variant=$1 deb_out=$2
	dkms_started=$SECONDS
	check "make deb: dpkg-buildpackage builds message-slot-dkms and message-slot-tools (trixie tree); lintian reports no error or warning" \
		make -s deb
	check "packages: apt install ./message-slot-dkms_*.deb ./message-slot-tools_*.deb, remove, purge (trixie tree, $variant's headers and metadata)" \
		tests/deb-stock --kernel "$variant" build/deb "$deb_out"
	check "packages: apt install succeeded, its postinst created the system group message-slot" \
		bash -c '[ "$(cat "$1/install.status")" = 0 ] && grep -q "^message-slot:x:[0-9]*:" "$1/group"' sh "$deb_out"
	check "packages: the tools in /usr/bin, their pages and message_slot(4), the header, the udev rule, the tmpfiles.d line and message-slot-static-nodes, hooks and DKMS source installed" \
		bash -c 'for f in /usr/bin/message_sender /usr/bin/message_reader /usr/bin/message_slot_stat \
			/usr/share/man/man1/message_sender.1.gz /usr/share/man/man1/message_reader.1.gz \
			/usr/share/man/man1/message_slot_stat.1.gz /usr/share/man/man4/message_slot.4.gz \
			/usr/share/man/man8/message-slot-prepare-kernel.8.gz \
			/usr/include/linux/message_slot.h /usr/lib/udev/rules.d/60-message-slot.rules \
			/usr/lib/tmpfiles.d/message-slot.conf /usr/lib/message-slot/message-slot-static-nodes \
			/usr/sbin/message-slot-prepare-kernel /usr/share/kernel/header_postinst.d/50message-slot \
			/usr/share/kernel/postrm.d/50message-slot /usr/src/message-slot-$2/dkms.conf; do
			grep -qx "$f" "$1/files" || { echo "not in the packages: $f"; exit 1; }; done
			[ "$(grep -c . "$1/man")" = 5 ]' sh "$deb_out" "$(rig_package_version)"
	echo "tests/run: the packages' build, DKMS builds and apt runs took $((SECONDS - dkms_started)) s"
	check "DKMS: a build without the Rust metadata fails, naming message-slot-prepare-kernel" \
		bash -c '[ "$(cat "$1/nometa.status")" != 0 ] && grep "no Rust metadata for kernel" "$1/nometa.log" |
			grep -q message-slot-prepare-kernel' sh "$deb_out"
	check "DKMS: the build ran with W=1 and is warning-free (make.log)" \
		bash -c 'grep -q " W=1 " "$1/make.log" && grep -q "message_slot.ko" "$1/make.log" &&
			! grep -i warning "$1/make.log"' sh "$deb_out"
	# The kernel the module was built for, from its own vermagic.
	dkms_kver=$(modinfo -F vermagic "$deb_out/message_slot.ko" 2>/dev/null | cut -d' ' -f1)
	dkms_installed() { # INSTALLED_PATHS DKMS_STATUS: under updates/, and `dkms status` says installed
		grep -q "^/lib/modules/$dkms_kver/updates/" "$1" &&
			grep -q "^message-slot/.*, $dkms_kver, x86_64: installed" "$2"
	}
	hooks_rebuilt() { # the hooks exited 0, then the module was installed again
		[ "$(cat "$deb_out/hook.status")" = 0 ] &&
			dkms_installed "$deb_out/hook-installed" "$deb_out/hook-dkms-status"
	}
	check "DKMS: the package's install put the module in /lib/modules/KVER/updates/ and dkms status says installed" \
		dkms_installed "$deb_out/installed" "$deb_out/status"
	check "DKMS: depmod lists the installed module's static node in modules.devname (its devname and char-major-235-0 aliases)" \
		grep -qx 'message_slot message_slot/0 c235:0' "$deb_out/devname"
	check "DKMS: the module is signed with the machine owner key (modinfo signer, sig_key)" \
		bash -c '[ "$(modinfo -F signer "$1/message_slot.ko")" = "message-slot throwaway test key" ] &&
			[ -n "$(modinfo -F sig_key "$1/message_slot.ko")" ]' sh "$deb_out"
	check "DKMS: a kernel update's hooks (linux-run-hooks headers postinst: ours, then DKMS's autoinstall) rebuild and install it" \
		hooks_rebuilt
	check "packages: apt remove leaves no module, alias in depmod's files, DKMS tree, hook, metadata link or file of theirs (the group stays; the linked tree is intact)" \
		bash -c '[ "$(cat "$1/remove.status")" = 0 ] && [ -s "$1/remove-group" ] && [ -f "$1/kdir-intact" ] &&
			{ [ ! -s "$1/remove-left" ] || { cat "$1/remove-left"; false; }; }' sh "$deb_out"
	check "packages: apt purge removes the group too; dpkg forgets both packages" \
		bash -c '[ "$(cat "$1/purge.status")" = 0 ] && ! grep -v "^message-slot-[a-z]* pn" "$1/purge-left"' sh "$deb_out"
}

# make install into a DESTDIR: the documented layout, and make uninstall removes it.
install_layout() { # MODULE
	local d kver expected actual tool
	d=$(mktemp -d)
	kver=$(modinfo -F vermagic "$1" | cut -d' ' -f1)
	make -s install DESTDIR="$d" MODULE_KO="$1" INSTALL_MODULES_LOAD=1 >/dev/null || return 1
	expected=$({
		echo etc/modules-load.d/message-slot.conf
		echo etc/tmpfiles.d/message-slot.conf
		echo etc/udev/rules.d/60-message-slot.rules
		echo "lib/modules/$kver/updates/message_slot.ko"
		for tool in $(rig_tools); do
			echo "usr/local/bin/$tool"
			echo "usr/local/share/man/man1/$tool.1"
		done
		echo usr/local/share/man/man4/message_slot.4
		echo usr/local/share/man/man8/message-slot-prepare-kernel.8
		echo usr/local/include/linux/message_slot.h
		echo usr/local/sbin/message-slot-prepare-kernel
		echo usr/local/lib/message-slot/message-slot-static-nodes
	} | sort)
	actual=$(cd "$d" && find . -type f ! -path "./lib/modules/$kver/modules.*" | sed 's|^\./||' | sort)
	[ "$actual" = "$expected" ] || { diff <(echo "$expected") <(echo "$actual"); return 1; }
	cmp "$1" "$d/lib/modules/$kver/updates/message_slot.ko" || return 1
	cmp uapi/message_slot.h "$d/usr/local/include/linux/message_slot.h" || return 1
	grep -q '^updates/message_slot.ko:' "$d/lib/modules/$kver/modules.dep" || return 1
	grep -qx 'alias char-major-235-\* message_slot' "$d/lib/modules/$kver/modules.alias" || return 1
	grep -qx 'message_slot message_slot/0 c235:0' "$d/lib/modules/$kver/modules.devname" || return 1
	grep -qx message_slot "$d/etc/modules-load.d/message-slot.conf" || return 1
	[ -x "$d/usr/local/bin/message_sender" ] && [ -x "$d/usr/local/sbin/message-slot-prepare-kernel" ] || return 1
	make -s uninstall DESTDIR="$d" >/dev/null || return 1
	actual=$(cd "$d" && find . -type f ! -path "./lib/modules/$kver/modules.*")
	[ -z "$actual" ] || { echo "left after uninstall: $actual"; return 1; }
	! grep -q message_slot "$d/lib/modules/$kver"/modules.{dep,alias,devname} || return 1
	rm -rf "$d"
}
# make install-dkms: the DKMS source, with name and version from the Makefile (Cargo.toml).
install_dkms_layout() {
	local d version src
	d=$(mktemp -d)
	version=$(rig_package_version)
	src=$d/usr/src/message-slot-$version
	make -s install-dkms DESTDIR="$d" >/dev/null || return 1
	grep -qx 'PACKAGE_NAME="message-slot"' "$src/dkms.conf" &&
		grep -qx "PACKAGE_VERSION=\"$version\"" "$src/dkms.conf" &&
		grep -qx 'BUILT_MODULE_NAME\[0\]="message_slot"' "$src/dkms.conf" &&
		grep -qx 'DEST_MODULE_LOCATION\[0\]="/updates"' "$src/dkms.conf" &&
		grep -qx 'AUTOINSTALL="yes"' "$src/dkms.conf" && ! grep -q @ "$src/dkms.conf" &&
		[ -f "$src/dkms-build" ] && [ -f "$src/kernel/Kbuild" ] && [ -f "$src/uapi/uapi.rs" ] &&
		grep -q '^/usr/local/sbin/message-slot-prepare-kernel "$kver"' "$d/etc/kernel/header_postinst.d/50message-slot" &&
		[ -x "$d/etc/kernel/header_postinst.d/50message-slot" ] && [ -x "$d/etc/kernel/postrm.d/50message-slot" ] || return 1
	make -s uninstall DESTDIR="$d" >/dev/null && [ -z "$(find "$d" -type f)" ] || return 1
	rm -rf "$d"
}
# The manual pages (build/man, from `make tools`) render without a warning, and every option
# a tool's --help shows is on its page.
render_pages() {
	local page out tool option
	[ "$(ls build/man | LC_ALL=C sort | tr '\n' ' ')" = "message-slot-prepare-kernel.8 message_reader.1 message_sender.1 message_slot.4 message_slot_stat.1 " ] ||
		{ ls build/man; return 1; }
	for page in build/man/*; do
		out=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
		[ -z "$out" ] || { echo "groff, $page: $out"; return 1; }
		out=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) && [ -z "$out" ] ||
			{ echo "man -l, $page: $out"; return 1; }
	done
	for tool in $(rig_tools); do
		out=$(groff -man -Tutf8 -P-cbou "build/man/$tool.1" 2>/dev/null)
		for option in $("build/tools/$tool" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
			grep -q -- "$option" <<<"$out" || { echo "$tool.1 lacks $option"; return 1; }
		done
	done
}
# dkms-build refuses kernels without CONFIG_RUST, or without Rust metadata, with a message.
dkms_build_refuses() {
	local d out status=0
	d=$(mktemp -d)
	mkdir -p "$d/norust" "$d/nometa"
	echo '# CONFIG_RUST is not set' >"$d/norust/.config"
	echo 'CONFIG_RUST=y' >"$d/nometa/.config"
	# shellcheck disable=SC2154 # tests/run's top directory
	out=$(cd "$d" && bash "$top/packaging/dkms/dkms-build" 0.0-test "$d/norust" 2>&1) && status=1
	grep -q "kernel 0.0-test is built without CONFIG_RUST" <<<"$out" || status=1
	out=$(cd "$d" && MESSAGE_SLOT_KDIR="$d/nometa" bash "$top/packaging/dkms/dkms-build" 0.0-test "$d/nometa" 2>&1) && status=1
	grep -q "no Rust metadata for kernel 0.0-test" <<<"$out" || status=1
	rm -rf "$d"
	return $status
}
# dkms-build warns about a kernel not in verified-kernels (the table's Debian releases, which
# `make dkms-source` writes), naming the verified ones, and goes on to build.
dkms_build_warns() {
	local d src out release
	d=$(mktemp -d)
	src=$d/usr/src/message-slot
	make -s dkms-source DESTDIR="$d" DKMS_SOURCE_DIR=/usr/src/message-slot >/dev/null || return 1
	[ "$(cat "$src/verified-kernels")" = "$(rig_verified_releases)" ] || { echo "verified-kernels differs from vm/lib.sh's table"; return 1; }
	mkdir -p "$d/k"
	echo 'CONFIG_RUST=y' >"$d/k/.config"
	# A future Debian kernel: warned about, then built (here: it goes on to look for the metadata).
	out=$(cd "$src" && MESSAGE_SLOT_KDIR="$d/k" bash dkms-build 7.99.1+deb13-amd64 "$d/k" 2>&1)
	echo "$out"
	grep -q "warning: kernel 7.99.1+deb13-amd64 is not one this version of message-slot was verified on ($(rig_verified_releases | paste -sd' '))" <<<"$out" &&
		grep -q "no Rust metadata for kernel 7.99.1+deb13-amd64" <<<"$out" || return 1
	# A verified one: no warning.
	release=$(rig_verified_releases | head -1)
	out=$(cd "$src" && MESSAGE_SLOT_KDIR="$d/k" bash dkms-build "$release" "$d/k" 2>&1)
	! grep -q warning <<<"$out" || return 1
	rm -rf "$d"
}

# The install targets, the manual pages and dkms-build: MODULE is the module that `make
# install` installs.
#   packaging_checks_install MODULE
packaging_checks_install() {
	check "make install DESTDIR=... lays out module (depmod -b: its aliases in modules.alias, its static node in modules.devname), tools, header, udev rule, tmpfiles.d, message-slot-static-nodes, modules-load.d; uninstall removes them" \
		install_layout "$1"
	check "make install-dkms DESTDIR=... installs the DKMS source, dkms.conf (name, version from Cargo.toml) and kernel hooks; uninstall removes them" \
		install_dkms_layout
	check "manual pages (3 generated from the tools' clap definitions, message_slot.4, message-slot-prepare-kernel.8) render warning-free (groff -ww, man -l) and show every --help option" \
		render_pages
	check "dkms-build fails with a message for a kernel without CONFIG_RUST and one without rust/ metadata" \
		dkms_build_refuses
	check "dkms-build warns about a kernel not verified here (7.99.1+deb13-amd64), naming the verified releases, and goes on (to its metadata lookup)" \
		dkms_build_warns
}
