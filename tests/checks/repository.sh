# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# The repository checks of tests/run (sourced by it; they use its `check`): the docs agree
# with the data they show, and every rig script's --help is its header comment.

# docs/kernels.md's table of kernels is vm/kernels' (vm/lib.sh kernels-markdown), row for row.
docs_kernels() {
	local shown
	shown=$(sed -n '/^<!-- kernels table:/,/^<!-- end of kernels table -->/p' docs/kernels.md | sed '1d;$d')
	[ "$shown" = "$(rig_kernels_markdown)" ] && return 0
	echo "docs/kernels.md's table differs from vm/kernels (< docs, > vm/lib.sh kernels-markdown):"
	diff <(echo "$shown") <(rig_kernels_markdown)
	return 1
}

# Every rig script (the executable bash scripts under vm/, tests/, bench/, .ci/ and packaging/)
# prints its header comment as its --help, whole and nothing else: the comment lines after the
# shebang, the SPDX line and the empty comment line after it, up to the first line that is not
# a comment; and exits 0. A script that mentions neither --help nor rig_help_if_asked fails
# without being run (it would take --help for a run); the rest run with MSG_SLOT_CACHE_NO_BUILD
# (nothing is built).
scripts_help() {
	local f expected actual status=0 count=0
	while read -r f; do
		[ "$(head -1 "$f")" = '#!/usr/bin/env bash' ] || continue
		count=$((count + 1))
		grep -qE -- '--help|rig_help_if_asked' "$f" || { echo "$f handles no --help"; status=1; continue; }
		expected=$(sed -n '1{/^#!/d}; /^#/!q; p' "$f" | sed '/^# SPDX-License-Identifier:/d' | sed '1{/^#$/d}' |
			sed 's/^# \{0,1\}//')
		actual=$(MSG_SLOT_CACHE_NO_BUILD=1 timeout 20 "$f" --help </dev/null 2>&1) ||
			{ echo "$f --help: exit status $?"; status=1; continue; }
		[ "$actual" = "$expected" ] || { echo "$f --help is not its header:"; diff <(echo "$expected") <(echo "$actual"); status=1; }
	done < <(find vm tests bench .ci packaging -type f -perm -u+x | LC_ALL=C sort)
	echo "$count scripts"
	((count >= 14)) && return $status
}

# Runs the repository checks.
repository_checks() {
	check "docs/kernels.md's table of kernels is vm/kernels' (vm/lib.sh kernels-markdown)" docs_kernels
	check "every rig script's --help is its whole header comment, and exits 0" scripts_help
}
