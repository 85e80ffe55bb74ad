# SPDX-License-Identifier: GPL-2.0
#
# The VM rig's shared shell library, sourced by the rig's scripts (vm/, tests/, .ci/run) and
# read by the Makefile:
#
#   . vm/lib.sh
#
# It holds the table of the kernels the rig builds and tests; every script takes a kernel's
# release, flavor and source package from it, so that the next Debian kernel is one entry
# here. It defines functions only and sets no shell options. Also runnable, for the Makefile
# and for people:
#
#   vm/lib.sh variants [suite|smoke]   the rig's kernel variants (those whose `make test` runs
#                                      the whole suite, or the smoke run)
#   vm/lib.sh stock-variants           the Debian kernels (stock-*)
#   vm/lib.sh field VARIANT FIELD      one field of a variant's row (FIELD as below)
#   vm/lib.sh verified-releases        the releases of the Debian kernels verified here
#   vm/lib.sh table                    the table itself

# The kernels, one per row (columns separated by blanks; `#` starts a comment):
#
#   variant   the name `KERNEL=`/`--kernel` take. base and debug are built by the rig
#             (vm/build-kernel: linux-source-6.12, tinyconfig + vm/config/VARIANT.config);
#             stock-* are Debian's unmodified kernels from trixie-backports (the image from
#             linux-binary-RELEASE, the module built by DKMS against the headers and the Rust
#             metadata message-slot-prepare-kernel makes from the source package).
#   release   the kernel release (uname -r; Debian's ABI name); for the rig's kernels the
#             source series (the exact release is the source package's version)
#   flavor    generic, rt (PREEMPT_RT) or cloud; the rig's kernels: rig or rig-debug
#   source    the Debian source package the kernel (or its Rust metadata) is built from
#   test      what `make test KERNEL=VARIANT` (and `make test-all`) runs on it: suite (every
#             host check, the DKMS build on stock-*, the whole guest suite, the install
#             session and the kernel log scan) or smoke (the host checks, the DKMS build, and
#             in the guest the install session: modprobe, the example session, rmmod)
#   ci        what .ci/run runs on it within its time budget (suite or smoke, as above, or
#             none: verified with `make test KERNEL=VARIANT`, not in CI)
#
# make test-all and .ci/run go through the kernels in the table's order.
#
# variant          release                  flavor     source             test   ci
rig_kernel_table() {
	sed -e 's/#.*//' -e '/^[[:space:]]*$/d' <<'TABLE'
base               6.12                     rig        linux-source-6.12  suite  suite
stock-7.3          7.3.4+deb13-amd64        generic    linux-source-7.3   suite  smoke
stock-7.3-rt       7.3.4+deb13-rt-amd64     rt         linux-source-7.3   suite  suite
stock-7.2          7.2.12+deb13-amd64       generic    linux-source-7.2   suite  none
stock-7.3-cloud    7.3.4+deb13-cloud-amd64  cloud      linux-source-7.3   smoke  none
debug              6.12                     rig-debug  linux-source-6.12  suite  suite
TABLE
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

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	case ${1:-} in
	variants) rig_kernel_variants "${2:-}" ;;
	stock-variants) rig_stock_variants ;;
	field) (($# == 3)) || { echo "usage: vm/lib.sh field VARIANT FIELD" >&2; exit 2; }; rig_kernel_field "$2" "$3" ;;
	verified-releases) rig_verified_releases ;;
	table) rig_kernel_table ;;
	-h | --help) sed -n '3,18p' "$0" | sed 's/^# \{0,1\}//' ;;
	*) echo "usage: vm/lib.sh variants [suite|smoke] | stock-variants | field VARIANT FIELD | verified-releases | table (see --help)" >&2; exit 2 ;;
	esac
fi
