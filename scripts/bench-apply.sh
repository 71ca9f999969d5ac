#!/usr/bin/env bash
# make bench-apply: generate N tools across M tenants and time validate,
# diff, first apply and no-op apply with the real binaries, then report
# stoad's RSS. N=10000 M=20 by default.
set -euo pipefail
BIN=${BIN:-$(pwd)/bin}
N=${N:-10000}
M=${M:-20}
tmp=$(mktemp -d -t stoa-bench.XXXXXX)
export STOA_SOCKET=$tmp/s.sock
stoad_pid=
cleanup() { [[ -n $stoad_pid ]] && kill "$stoad_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

mkdir -p "$tmp/specs"
(cd "$(dirname "$0")/.." && go run ./internal/benchspecs/cmd/benchspecs -n "$N" -m "$M" "$tmp/specs")
size=$(du -sh "$tmp/specs" | cut -f1)
"$BIN/stoad" --state-dir "$tmp/state" --socket "$STOA_SOCKET" --mcp-socket "$tmp/m.sock" \
	--listen 127.0.0.1:0 --ops-listen "" --log-level warn &
stoad_pid=$!
for _ in $(seq 100); do "$BIN/stoa" status >/dev/null 2>&1 && break; sleep 0.1; done

# CPU times next to wall times: on a shared machine wall time is mostly
# the other jobs, CPU time hardly. The CLI's comes from bash's children
# times, stoad's from /proc (clock ticks).
tick_ms=$((1000 / $(getconf CLK_TCK)))
children_ms() { # user+system CPU of the shell's finished children, in ms, into $REPLY
	local u s
	times >"$tmp/times" # here, not in a subshell, which has children of its own
	read -r u s < <(tail -n 1 "$tmp/times")
	REPLY=$(( $(to_ms "$u") + $(to_ms "$s") ))
}
to_ms() { # 1m2.345s -> 62345
	local m=${1%%m*} rest=${1#*m}
	local sec=${rest%%.*} frac=${rest#*.}
	frac=${frac%s}
	echo $(( m * 60000 + 10#$sec * 1000 + 10#${frac:0:3} ))
}
stoad_ms() { awk -v t="$tick_ms" '{print ($14 + $15) * t}' "/proc/$stoad_pid/stat"; }
t() { # t LABEL CMD...: wall and CPU time in ms of CMD (exit codes 0 and 2 are fine)
	local label=$1; shift
	local s e rc=0 c0 c1 d0 d1
	d0=$(stoad_ms); children_ms; c0=$REPLY
	s=$(date +%s%N)
	"$@" >/dev/null 2>"$tmp/err" || rc=$?
	e=$(date +%s%N)
	children_ms; c1=$REPLY; d1=$(stoad_ms)
	if [[ $rc != 0 && $rc != 2 ]]; then echo "$label failed (exit $rc):"; cat "$tmp/err"; exit 1; fi
	printf '%-22s %6d ms   CPU: stoa %5d ms, stoad %5d ms\n' "$label" $(( (e - s) / 1000000 )) $((c1 - c0)) $((d1 - d0))
}
echo "bench-apply: $N tools across $M tenants ($size of YAML), $(nproc) cores"
t "validate" "$BIN/stoa" validate -f "$tmp/specs"
t "diff (all new)" "$BIN/stoa" diff -f "$tmp/specs" --brief
t "apply (first)" "$BIN/stoa" apply -f "$tmp/specs"
t "diff (no change)" "$BIN/stoa" diff -f "$tmp/specs"
t "apply (no-op)" "$BIN/stoa" apply -f "$tmp/specs"
rss=$(awk '/VmRSS/{print $2}' /proc/$stoad_pid/status)
printf '%-22s %6d MB\n' "stoad RSS" $((rss / 1024))
# The steps above run back to back, each right after stoad's background
# work for the previous one (audit and webhook feeds, returning memory).
# Measure once more when it has settled, as an operator's next apply is.
sleep 5
t "apply (no-op, settled)" "$BIN/stoa" apply -f "$tmp/specs"
rss=$(awk '/VmRSS/{print $2}' /proc/$stoad_pid/status)
printf '%-22s %6d MB\n' "stoad RSS, settled" $((rss / 1024))
printf '%-22s %6s\n' "state db" "$(du -h "$tmp/state/stoa.db" | cut -f1)"
