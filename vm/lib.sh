#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The VM rig's shared shell library, sourced by the rig's scripts (vm/, tests/, bench/run,
# .ci/run) and run by the Makefile:
#
#   . vm/lib.sh
#
# It holds what the scripts share: the table of the kernels the rig builds and tests, read
# from vm/kernels (every script takes a kernel's release, flavor and source package from it,
# so that the next Debian kernel is one row there), how a kernel is made ready (its build
# tree, its image) and how a module is built against it, the rig's toolchain, the cache under
# $MSG_SLOT_CACHE (default /var/cache/message-slot: its entries, keys, locks and markers), the
# host's Debian mirror, the `N passed, M failed, K skipped` summary line and the scripts'
# --help (their header comment). It defines functions only and sets no shell options. Also
# runnable, for the Makefile and for people:
#
#   vm/lib.sh variants [suite|smoke]   the rig's kernel variants (those whose `make test` runs
#                                      the whole suite, or the smoke run)
#   vm/lib.sh stock-variants           the Debian kernels (stock-*)
#   vm/lib.sh field VARIANT FIELD      one field of a variant's row (FIELD: a column of
#                                      vm/kernels)
#   vm/lib.sh verified-releases        the releases of the Debian kernels verified here
#   vm/lib.sh series                   the kernel series (X.Y) of the table, each once
#   vm/lib.sh table                    the table itself
#   vm/lib.sh kernels-markdown         the table as docs/kernels.md shows it
#   vm/lib.sh default-variant          the kernel used when none is named (the first row)
#   vm/lib.sh default-stock-variant    the Debian kernel used when none is named (the first
#                                      stock-* row)
#   vm/lib.sh package-version          the package's version (Cargo.toml's workspace version)
#   vm/lib.sh kdir VARIANT             the kernel's module build tree (built or prepared if
#                                      missing)
#   vm/lib.sh kmake VARIANT MAKE_ARG...  make -C KDIR with the kernel's toolchain (rustc-web
#                                      and LLVM for the rig's kernels; for stock-*, the
#                                      toolchain Debian built them with, in the trixie tree:
#                                      the repository and the cache are visible there,
#                                      nothing else)
#   vm/lib.sh debian-mirror            the Debian mirror of the host's APT sources
#
# MSG_SLOT_CACHE_NO_BUILD=1 makes every script fail (status 3) instead of making a missing
# cache entry: it shows whether a run would build a kernel, prepare a tree or make the trixie
# tree, and which.

# rig_kernel_table: the rows of vm/kernels (the table of kernels; its header says what each
# column holds), without comments and blank lines.
rig_kernel_table() {
	sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$(rig_top)/vm/kernels"
}

# The column number of FIELD.
rig_kernel_column() {
	case $1 in
	variant) echo 1 ;; release) echo 2 ;; flavor) echo 3 ;; source) echo 4 ;; test) echo 5 ;;
	ci) echo 6 ;;
	*) echo "vm/lib.sh: no field $1 (variant, release, flavor, source, test, ci)" >&2; return 2 ;;
	esac
}

# rig_kernel_field VARIANT FIELD: prints the field; fails with a message for an unknown variant.
rig_kernel_field() {
	local column value
	column=$(rig_kernel_column "$2") || return 2
	value=$(rig_kernel_table | awk -v v="$1" -v c="$column" '$1 == v { print $c }')
	[ -n "$value" ] || {
		echo "vm/lib.sh: no kernel variant $1 (known: $(rig_kernel_variants | paste -sd' '))" >&2
		return 2
	}
	echo "$value"
}

# rig_kernel_variants [suite|smoke]: the variants, in the table's order (those whose test is
# the one given).
rig_kernel_variants() {
	rig_kernel_table | awk -v t="${1:-}" 't == "" || $5 == t { print $1 }'
}

# rig_stock_variants: Debian's kernels.
rig_stock_variants() {
	rig_kernel_table | awk '$1 ~ /^stock-/ { print $1 }'
}

# rig_is_stock VARIANT: true for one of Debian's kernels.
rig_is_stock() {
	case $1 in stock-*) rig_kernel_field "$1" release >/dev/null ;; *) return 1 ;; esac
}

# rig_verified_releases: the releases of Debian's kernels the module is verified on (the DKMS
# build warns on any other; `make dkms-source` writes this list into the DKMS source).
rig_verified_releases() {
	rig_kernel_table | awk '$1 ~ /^stock-/ { print $2 }'
}

# rig_source_packages: the source packages Debian's kernels need (each once).
rig_source_packages() {
	rig_kernel_table | awk '$1 ~ /^stock-/ && !seen[$4]++ { print $4 }'
}

# rig_check_variant VARIANT: true for a kernel of the table; fails with a message otherwise.
rig_check_variant() {
	rig_kernel_field "$1" release >/dev/null
}

# rig_default_variant: the kernel a script uses when none is named (the table's first row).
rig_default_variant() {
	rig_kernel_variants | head -1
}

# rig_default_stock_variant: the Debian kernel a script uses when none is named (the table's
# first stock-* row).
rig_default_stock_variant() {
	rig_stock_variants | head -1
}

# rig_kernel_series: the kernel series (X.Y of the release) of the table's kernels, each once,
# in the table's order (the Makefile passes them to Kbuild's message).
rig_kernel_series() {
	rig_kernel_table | awk '{ split($2, v, "."); s = v[1] "." v[2]; if (!seen[s]++) print s }'
}

# rig_kernels_markdown: the table as a Markdown table (docs/kernels.md holds it between its
# markers; tests/run checks that it is this output).
rig_kernels_markdown() {
	echo '| `KERNEL=` | release | flavor | source package | `make test` runs | CI runs |'
	echo '|---|---|---|---|---|---|'
	rig_kernel_table | awk '{ printf "| `%s` | `%s` | %s | `%s` | %s | %s |\n", $1, $2, $3, $4, $5, $6 }'
}

# The repository's top directory.
rig_top() {
	(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
}

# rig_kernel_tree VARIANT: prints the kernel's module build tree (KDIR): vm/build-kernel's for
# the rig's kernels, vm/prepare-stock-kernel's for stock-*; makes it if it is missing.
rig_kernel_tree() {
	rig_check_variant "$1" || return 2
	if rig_is_stock "$1"; then
		"$(rig_top)/vm/prepare-stock-kernel" "$1"
	else
		"$(rig_top)/vm/build-kernel" "$1"
	fi
}

# rig_kernel_image VARIANT: prints the kernel image vm/run boots (made if missing).
rig_kernel_image() {
	local dir
	rig_check_variant "$1" || return 2
	if rig_is_stock "$1"; then
		dir=$("$(rig_top)/vm/prepare-stock-kernel" "$1" --image) || return 1
		echo "$dir/vmlinuz"
	else
		dir=$("$(rig_top)/vm/build-kernel" "$1") || return 1
		echo "$dir/arch/x86/boot/bzImage"
	fi
}

# rig_kernel_release VARIANT: the kernel's exact release (uname -r): the table's for stock-*,
# the build tree's for the rig's kernels (whose table entry is the series).
rig_kernel_release() {
	local kdir
	if rig_is_stock "$1"; then
		rig_kernel_field "$1" release
	else
		kdir=$(rig_kernel_tree "$1") || return 1
		cat "$kdir/include/config/kernel.release"
	fi
}

# The package: its version (the workspace's, in Cargo.toml) and the tools it installs (the
# Makefile's TOOLS, each a binary of user/tools).
rig_package_version() {
	sed -n 's/^version = "\(.*\)"$/\1/p' "$(rig_top)/Cargo.toml"
}
rig_tools() {
	sed -n 's/^TOOLS := //p' "$(rig_top)/Makefile"
}

# rig_cargo_path: puts the cargo-installed programs (bindgen; cargo and rustup's rustc when
# installed by rustup) on PATH.
rig_cargo_path() {
	export PATH="$HOME/.cargo/bin:$PATH"
}

# rig_rust_toolchain: sets up the toolchain the rig's kernels (base, debug) and modules against
# them are built with: Debian's rustc-web (RUSTC, RUSTDOC), the bindgen cargo installed
# (PATH), the libclang of the clang that compiles the kernel (LIBCLANG_PATH) and
# KBUILD_TOOLCHAIN, the make variables that select them all (and CLIPPY_DRIVER, rust-web-clippy,
# for `make ... CLIPPY=1`: the kernel's clippy lints).
rig_rust_toolchain() {
	local llvm_dir
	rig_cargo_path
	RUSTC=/usr/bin/rustc
	RUSTDOC=/usr/bin/rustdoc
	# bindgen must load the libclang of the LLVM that compiles the kernel (clang-14 on bookworm).
	llvm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v clang)")")")
	export LIBCLANG_PATH=${LIBCLANG_PATH:-$llvm_dir/lib}
	KBUILD_TOOLCHAIN=(LLVM=1 RUSTC="$RUSTC" RUSTDOC="$RUSTDOC" BINDGEN=bindgen CLIPPY_DRIVER=/usr/bin/clippy-driver)
}

# rig_kmake VARIANT MAKE_ARG...: make -C KDIR MAKE_ARG... with the toolchain the kernel was
# built with: rig_rust_toolchain's for the rig's kernels; for stock-*, vm/prepare-stock-kernel's
# make variables in the trixie tree (vm/trixie-run: paths under the repository and the cache
# only). Out-of-tree modules: rig_kmake VARIANT M=DIR W=1 modules.
rig_kmake() {
	local variant=$1 kdir top make_vars
	shift
	top=$(rig_top)
	kdir=$(rig_kernel_tree "$variant") || return
	if rig_is_stock "$variant"; then
		read -ra make_vars <<<"$("$top/vm/prepare-stock-kernel" "$variant" --make-vars)"
		"$top/vm/trixie-run" -- make -C "$kdir" "${make_vars[@]}" "$@"
	else
		(rig_rust_toolchain && make -C "$kdir" "${KBUILD_TOOLCHAIN[@]}" "$@")
	fi
}

# The cache: built kernels, prepared trees and the trixie tree live under one directory, each
# entry a directory NAME-KEY (KEY: rig_cache_key of what it is made from) that is complete when
# it holds its marker file (.built, .prepared, .ready, .fetched, .unpacked), made under the lock
# file NAME-KEY.lock.

# rig_cache_dir: the cache's directory.
rig_cache_dir() {
	echo "${MSG_SLOT_CACHE:-/var/cache/message-slot}"
}

# rig_cache_key: the key of the recipe read from stdin (16 hex digits of its SHA-256).
rig_cache_key() {
	sha256sum | cut -c1-16
}

# rig_cache_ensure [--remake] ENTRY MARKER WHAT FUNCTION [ARG...]: makes the cache entry ENTRY
# (a path) unless it holds MARKER (or --remake): under ENTRY.lock (waiting, and saying so, for
# another process making it, whose result then counts), FUNCTION ARG... makes ENTRY, then MARKER
# is written. WHAT names the entry in messages. Run with `set -e` (a failing FUNCTION ends the
# script); with MSG_SLOT_CACHE_NO_BUILD set it fails with status 3 instead of making ENTRY.
rig_cache_ensure() {
	local remake='' entry marker what fd
	[ "$1" != --remake ] || { remake=1; shift; }
	entry=$1 marker=$2 what=$3
	shift 3
	[ -n "$remake" ] || [ ! -f "$entry/$marker" ] || return 0
	if [ -n "${MSG_SLOT_CACHE_NO_BUILD:-}" ]; then
		echo "${0##*/}: $what is not in the cache ($entry; MSG_SLOT_CACHE_NO_BUILD is set)" >&2
		return 3
	fi
	mkdir -p "$(dirname "$entry")"
	exec {fd}>"$entry.lock"
	if ! flock -n "$fd"; then
		echo "${0##*/}: waiting for another process making $what ($entry)" >&2
		flock "$fd"
		if [ -f "$entry/$marker" ]; then
			exec {fd}>&-
			return 0
		fi
	fi
	if [ -n "$remake" ] || [ ! -f "$entry/$marker" ]; then
		"$@"
		touch "$entry/$marker"
	fi
	exec {fd}>&-
}

# rig_debian_mirror [APT_DIR [CODENAME]]: the Debian mirror the host's APT uses (APT_DIR
# default /etc/apt): the URI of the first source, in APT's order (sources.list, then
# sources.list.d/*.list one-line entries and *.sources deb822 stanzas by file name), of type
# deb with the component main whose suite is the host's release (CODENAME, default
# VERSION_CODENAME of /etc/os-release; a security suite never matches), without a trailing
# slash. MSG_SLOT_DEBIAN_MIRROR overrides it. Fails with a message when there is none.
# shellcheck disable=SC2120 # tests/run passes a test APT_DIR
rig_debian_mirror() {
	local apt=${1:-/etc/apt} codename=${2:-} mirror
	if [ -n "${MSG_SLOT_DEBIAN_MIRROR:-}" ]; then
		echo "${MSG_SLOT_DEBIAN_MIRROR%/}"
		return 0
	fi
	# shellcheck disable=SC1091 # the host's
	[ -n "$codename" ] || codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
	mirror=$(rig_apt_sources "$apt" | awk -v c="$codename" '
		$2 == c { for (i = 3; i <= NF; i++) if ($i == "main") { print $1; exit } }')
	if [ -z "$mirror" ]; then
		echo "vm/lib.sh: no Debian mirror for ${codename:-the host release} (main) in $apt/sources.list" \
			"or $apt/sources.list.d (deb lines, deb822 .sources); set MSG_SLOT_DEBIAN_MIRROR=URL" >&2
		return 1
	fi
	echo "${mirror%/}"
}

# rig_apt_sources APT_DIR: `URI SUITE COMPONENT...` of every deb source, in APT's order.
rig_apt_sources() {
	local f
	for f in "$1/sources.list" "$1"/sources.list.d/*; do
		[ -f "$f" ] || continue
		case $f in
		*.list)
			sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" { $1 = ""; sub(/^ /, ""); print }'
			;;
		*.sources)
			awk -v RS= -F '\n' '{
				types = uris = suites = comps = ""; enabled = "yes"
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^#/ || index($i, ":") == 0) continue
					name = tolower(substr($i, 1, index($i, ":") - 1))
					value = substr($i, index($i, ":") + 1)
					if (name == "types") types = value
					else if (name == "uris") uris = value
					else if (name == "suites") suites = value
					else if (name == "components") comps = value
					else if (name == "enabled") enabled = value
				}
				if (enabled ~ /no/ || (" " types " ") !~ /[ \t]deb[ \t]/) next
				nu = split(uris, u, " "); ns = split(suites, s, " "); nc = split(comps, c, " ")
				for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) {
					line = u[i] " " s[j]
					for (k = 1; k <= nc; k++) line = line " " c[k]
					print line
				}
			}' "$f"
			;;
		esac
	done
}

# The summary line of a test run, `N passed, M failed, K skipped` (`, K skipped` optional):
# tests/run, tests/guest-suite.sh and the guest suite end with one, .ci/run adds them up.

# rig_summary_counts [FILE...]: `PASSED FAILED SKIPPED` of every summary line in FILE (or
# stdin), one line each, in order.
rig_summary_counts() {
	grep -hE '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$@" |
		awk '{ print $1, $3, ($5 == "" ? 0 : $5) }'
}

# A script's --help is its header comment: the comment lines at its top (after the shebang, the
# SPDX line and the empty comment line after it) up to the first line that is not a comment.

# rig_usage FILE: prints FILE's header comment.
rig_usage() {
	awk 'NR == 1 && /^#!/ { next }
		!/^#/ { exit }
		/^# SPDX-License-Identifier:/ { next }
		!body && /^#$/ { next }
		{ body = 1; sub(/^# ?/, ""); print }' "$1"
}

# rig_help_if_asked FILE [ARG]: when ARG is -h or --help, prints FILE's header and exits 0.
rig_help_if_asked() {
	case ${2:-} in -h | --help) rig_usage "$1"; exit 0 ;; esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	case ${1:-} in
	variants) rig_kernel_variants "${2:-}" ;;
	stock-variants) rig_stock_variants ;;
	field) (($# == 3)) || { echo "usage: vm/lib.sh field VARIANT FIELD" >&2; exit 2; }; rig_kernel_field "$2" "$3" ;;
	verified-releases) rig_verified_releases ;;
	series) rig_kernel_series ;;
	table) rig_kernel_table ;;
	kernels-markdown) rig_kernels_markdown ;;
	default-variant) rig_default_variant ;;
	default-stock-variant) rig_default_stock_variant ;;
	package-version) rig_package_version ;;
	kdir) (($# == 2)) || { echo "usage: vm/lib.sh kdir VARIANT" >&2; exit 2; }; rig_kernel_tree "$2" ;;
	kmake) (($# >= 2)) || { echo "usage: vm/lib.sh kmake VARIANT MAKE_ARG..." >&2; exit 2; }; shift; rig_kmake "$@" ;;
	debian-mirror) rig_debian_mirror ;;
	-h | --help) rig_usage "$0" ;;
	*) echo "usage: vm/lib.sh variants [suite|smoke] | stock-variants | field VARIANT FIELD | verified-releases | series | table | kernels-markdown | default-variant | default-stock-variant | package-version | kdir VARIANT | kmake VARIANT MAKE_ARG... | debian-mirror (see --help)" >&2; exit 2 ;;
	esac
fi
