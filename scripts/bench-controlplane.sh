#!/usr/bin/env bash
# make bench-controlplane: apply N tools to one control plane on
# PostgreSQL through its HTTPS API (the real stoa, logged in with client
# credentials of the development issuer) and through its unix socket,
# in R interleaved rounds (each: a first apply of everything, three
# no-op applies, rollback 0 to empty it again), so a busy machine's
# drift hits both alike; report the medians, the remote/local ratios and
# the control plane's RSS. Needs a local PostgreSQL reachable as the OS
# user over /var/run/postgresql (createdb). N=10000 M=20 R=3 by default.
set -euo pipefail
BIN=${BIN:-$(pwd)/bin}
N=${N:-10000}
M=${M:-20}
R=${R:-3}
PGHOST=${PGHOST:-/var/run/postgresql}
tmp=$(mktemp -d -t stoa-cpbench.XXXXXX)
db=stoa_bench_$$
cp_pid=
cleanup() {
	[[ -n $cp_pid ]] && kill "$cp_pid" 2>/dev/null
	wait 2>/dev/null || true
	dropdb -h "$PGHOST" --force "$db" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# The same specs as make bench-apply.
mkdir -p "$tmp/specs"
(cd "$(dirname "$0")/.." && go run ./internal/benchspecs/cmd/benchspecs -n "$N" -m "$M" "$tmp/specs")

api=127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
createdb -h "$PGHOST" "$db"
"$BIN/stoad" --role control-plane --store "postgres:///$db?host=$PGHOST" --dev-issuer \
	--api-listen "$api" --state-dir "$tmp/state" --socket "$tmp/s.sock" \
	--mcp-socket "" --ops-listen "" --log-level warn >"$tmp/log" 2>&1 &
cp_pid=$!
for _ in $(seq 300); do grep -q STOA_CLIENT_SECRET= "$tmp/log" && break; sleep 0.1; done
secret=$(sed -n 's/.*STOA_CLIENT_SECRET=\([0-9a-f]*\).*/\1/p' "$tmp/log" | head -1)
fp=$(grep -o 'SHA256:[0-9A-F:]\{95\}' "$tmp/log" | head -1)
if [[ -z $secret || -z $fp ]]; then echo "the control plane did not start:"; cat "$tmp/log"; exit 1; fi
export XDG_CONFIG_HOME=$tmp/config STOA_CLIENT_SECRET=$secret
unset STOA_CONTEXT STOA_SOCKET STOA_TOKEN
"$BIN/stoa" context add bench --server "https://$api" --issuer "https://$api/dev-idp" --client-id stoa-ci \
	--fingerprint "$fp" --issuer-fingerprint "$fp" --use >/dev/null 2>&1
"$BIN/stoa" login --client-credentials >/dev/null 2>&1

ms() { # ms CMD...: wall time of CMD in ms
	local s e rc=0
	s=$(date +%s%N)
	"$@" >/dev/null 2>"$tmp/err" || rc=$?
	e=$(date +%s%N)
	if [[ $rc != 0 ]]; then echo "$* failed (exit $rc):" >&2; cat "$tmp/err" >&2; exit 1; fi
	echo $(( (e - s) / 1000000 ))
}
local_stoa() { "$BIN/stoa" --socket "$tmp/s.sock" "$@"; }
remote_stoa() { "$BIN/stoa" --context bench "$@"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "bench-controlplane: $N tools across $M tenants ($(du -sh "$tmp/specs" | cut -f1) of YAML), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), PostgreSQL at $PGHOST, $R rounds"
lf=() ln=() rf=() rn=()
for round in $(seq "$R"); do
	for via in local remote; do
		f=$(ms ${via}_stoa apply -f "$tmp/specs")
		n=()
		for _ in 1 2 3; do n+=("$(ms ${via}_stoa apply -f "$tmp/specs")"); done
		ms ${via}_stoa rollback 0 --yes >/dev/null
		nm=$(median "${n[@]}")
		printf 'round %d %-7s apply (first) %6d ms   apply (no-op) %6d ms\n' "$round" "$via" "$f" "$nm"
		if [[ $via == local ]]; then lf+=("$f"); ln+=("$nm"); else rf+=("$f"); rn+=("$nm"); fi
	done
done
LF=$(median "${lf[@]}") LN=$(median "${ln[@]}") RF=$(median "${rf[@]}") RN=$(median "${rn[@]}")
printf '%-37s %6d ms\n' "socket: apply (first), median" "$LF" "socket: apply (no-op), median" "$LN" \
	"HTTPS + token: apply (first), median" "$RF" "HTTPS + token: apply (no-op), median" "$RN"
awk -v rf="$RF" -v lf="$LF" -v rn="$RN" -v ln="$LN" 'BEGIN {
	printf "%-37s %6.2f x\n", "remote/local, first apply", rf / lf
	printf "%-37s %6.2f x\n", "remote/local, no-op apply", rn / ln
}'
printf '%-37s %6d MB\n' "control plane RSS" $(( $(awk '/VmRSS/{print $2}' "/proc/$cp_pid/status") / 1024 ))
