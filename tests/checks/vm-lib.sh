# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# vm/lib.sh's own tests, run by tests/run (sourced by it; they use its `check`).

# vm/setup-trixie's mirror is the host's (vm/lib.sh's rig_debian_mirror): from one-line and
# deb822 APT sources, the first deb source of the release with main (not a security or
# third-party one, not a disabled stanza); MSG_SLOT_DEBIAN_MIRROR overrides; none is an error.
debian_mirror() {
	local d out status=0
	d=$(mktemp -d)
	mkdir -p "$d/list/sources.list.d" "$d/deb822/sources.list.d" "$d/none/sources.list.d"
	printf '%s\n' '# a comment' 'deb http://security.debian.org/debian-security bookworm-security main' \
		'deb https://download.docker.com/linux/debian bookworm stable' \
		'deb [signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian/ bookworm main contrib' >"$d/list/sources.list"
	printf '%s\n' 'Types: deb' 'URIs: http://off.example/debian' 'Suites: bookworm' 'Components: main' 'Enabled: no' \
		>"$d/deb822/sources.list.d/a.sources"
	printf '%s\n' 'Types: deb' '# http://snapshot.debian.org/archive/debian/20250520T000000Z' \
		'URIs: http://deb.example/debian' 'Suites: bookworm bookworm-updates' 'Components: main' '' \
		'Types: deb' 'URIs: http://deb.example/debian-security' 'Suites: bookworm-security' 'Components: main' \
		>"$d/deb822/sources.list.d/debian.sources"
	echo 'deb http://security.debian.org/debian-security bookworm-security main' >"$d/none/sources.list"
	out=$(unset MSG_SLOT_DEBIAN_MIRROR; rig_debian_mirror "$d/list" bookworm) && [ "$out" = http://mirror.example/debian ] ||
		{ echo "one-line: $out"; status=1; }
	out=$(unset MSG_SLOT_DEBIAN_MIRROR; rig_debian_mirror "$d/deb822" bookworm) && [ "$out" = http://deb.example/debian ] ||
		{ echo "deb822: $out"; status=1; }
	out=$(MSG_SLOT_DEBIAN_MIRROR=http://override.example/debian/ rig_debian_mirror "$d/deb822" bookworm) &&
		[ "$out" = http://override.example/debian ] || { echo "override: $out"; status=1; }
	out=$(unset MSG_SLOT_DEBIAN_MIRROR; rig_debian_mirror "$d/none" bookworm 2>&1) && { echo "none: $out"; status=1; }
	grep -q MSG_SLOT_DEBIAN_MIRROR <<<"$out" || { echo "none: $out"; status=1; }
	rm -rf "$d"
	return $status
}

# Runs vm/lib.sh's tests.
vm_lib_checks() {
	check "the Debian mirror comes from the host's APT sources (one-line, deb822), MSG_SLOT_DEBIAN_MIRROR overrides, none is an error" \
		debian_mirror
}
