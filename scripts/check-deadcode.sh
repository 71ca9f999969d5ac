#!/usr/bin/env bash
# Fails on dead code: a function that no program in the module (cmd/,
# internal/gen/, examples/) and no test reaches. The analysis is the
# deadcode tool pinned in go.mod (`go tool deadcode`), rapid type analysis
# from every main package and, with -test, every test binary: a helper
# that only tests call counts as used, so what is left is code nothing
# runs. Generated files are skipped. The analysis holds for one GOOS/GOARCH
# (this machine's, linux/amd64); a function used only under another
# build tag would be reported and belongs in the allow-list.
#
# scripts/deadcode-allow.txt lists tolerated findings, one "file Func" per
# line (no line numbers, so edits elsewhere in the file do not churn it).
# An entry that no longer matches is reported on stderr so it gets removed.
set -euo pipefail
cd "$(dirname "$0")/.."
allow=scripts/deadcode-allow.txt

found=$(go tool deadcode -test \
	-f '{{range .Funcs}}{{printf "%s %s\t%s\n" .Position.File .Name .Position}}{{end}}' ./...)

allowed=$(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$allow" | sort -u)
bad=$(printf '%s\n' "$found" | awk -F'\t' -v list="$allowed" '
	BEGIN { n = split(list, a, "\n"); for (i = 1; i <= n; i++) ok[a[i]] = 1 }
	$1 != "" && !($1 in ok) { print $2 ": unreachable func: " substr($1, index($1, " ") + 1) }')
stale=$(comm -23 <(printf '%s\n' "$allowed") <(printf '%s\n' "$found" | cut -f1 | sort -u) | sed '/^$/d')

if [ -n "$stale" ]; then
	echo "note: $allow lists code that is no longer dead; remove these lines:" >&2
	sed 's/^/  /' <<<"$stale" >&2
fi
if [ -n "$bad" ]; then
	echo "$bad"
	echo "dead code: no program or test calls the functions above; delete them," >&2
	echo "or call them, or (only while their package is being reworked) list them in $allow" >&2
	exit 1
fi
echo "deadcode: no unreachable functions ($(printf '%s\n' "$allowed" | grep -c . || true) allowed in $allow)"
