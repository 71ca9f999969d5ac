#!/usr/bin/env bash
# make demo: start stoad on embedded defaults in a temporary state dir, apply
# examples/quickstart, show the tools and an empty diff, then keep serving
# until Ctrl-C. DEMO_EXIT=1 stops right after the walkthrough (used by tests).
set -euo pipefail
BIN=${BIN:-$(pwd)/bin}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d -t stoa-demo.XXXXXX)
export STOA_SOCKET=$tmp/stoad.sock
stoad_pid=
cleanup() {
	if [[ -n $stoad_pid ]] && kill -0 "$stoad_pid" 2>/dev/null; then
		kill -TERM "$stoad_pid" 2>/dev/null || true
		wait "$stoad_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
	echo "demo stopped; removed $tmp"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

"$BIN/stoad" --state-dir "$tmp/state" --socket "$STOA_SOCKET" --mcp-socket "$tmp/mcp.sock" \
	--listen "${STOA_DEMO_LISTEN:-127.0.0.1:8080}" --ops-listen "${STOA_DEMO_OPS:-127.0.0.1:9090}" \
	--log-level warn &
stoad_pid=$!
for _ in $(seq 100); do
	[[ -S $STOA_SOCKET ]] && "$BIN/stoa" status >/dev/null 2>&1 && break
	kill -0 "$stoad_pid" 2>/dev/null || { echo "stoad exited early" >&2; exit 1; }
	sleep 0.1
done

step stoa validate -f examples/quickstart
"$BIN/stoa" validate -f "$root/examples/quickstart"
step stoa apply -f examples/quickstart
"$BIN/stoa" apply -f "$root/examples/quickstart"
step stoa get tools
"$BIN/stoa" get tools
step stoa diff -f examples/quickstart
"$BIN/stoa" diff -f "$root/examples/quickstart" && echo "(exit 0: live state matches the files)"
step stoa status
"$BIN/stoa" status

if [[ ${DEMO_EXIT:-0} == 1 ]]; then exit 0; fi
printf '\nstoad is serving (state in %s). Try: STOA_SOCKET=%s %s/stoa get tools -o yaml\nPress Ctrl-C to stop.\n' "$tmp" "$STOA_SOCKET" "$BIN"
wait "$stoad_pid"
