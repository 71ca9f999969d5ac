#!/usr/bin/env bash
# make bench-metrics: stoad's CPU per scrape of /metrics while it serves the
# bench-apply set (N=10000 tools, 2 MCP tools each, M=20 tenants) with
# traffic on BUSY of the tools (requests without a key: 401s, counted like
# any answer). SCRAPES scrapes each as Prometheus asks (gzip) and as curl
# asks (plain); stoad's CPU comes from /proc (clock ticks: 10 ms, hence
# many scrapes). Prints CPU ms per scrape and the bytes of one.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$root/bin}
N=${N:-10000}
M=${M:-20}
BUSY=${BUSY:-100}
SCRAPES=${SCRAPES:-200}
tmp=$(mktemp -d -t stoa-benchm.XXXXXX)
export STOA_SOCKET=$tmp/s.sock
stoad_pid=
cleanup() { [[ -n $stoad_pid ]] && kill "$stoad_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

mkdir -p "$tmp/specs"
(cd "$root" && go run ./internal/benchspecs/cmd/benchspecs -n "$N" -m "$M" "$tmp/specs")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pport=$(free_port)
oport=$(free_port)
"$BIN/stoad" --state-dir "$tmp/state" --socket "$STOA_SOCKET" --mcp-socket "$tmp/m.sock" \
	--listen 127.0.0.1:"$pport" --ops-listen 127.0.0.1:"$oport" --log-level warn &
stoad_pid=$!
for _ in $(seq 100); do "$BIN/stoa" status >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN/stoa" apply -f "$tmp/specs" >/dev/null

urls=()
for ((i = 0; i < BUSY; i++)); do
	tool=$((i * (N / BUSY)))
	urls+=("http://127.0.0.1:$pport/tenant-$(printf %02d $((tool % M)))/tool-$(printf %05d $tool)/items/1")
done
curl -s -o /dev/null "${urls[@]}"
sleep 2 # let the apply's aftermath (feeds, freeing memory) pass

tick_ms=$((1000 / $(getconf CLK_TCK)))
stoad_ms() { awk -v t="$tick_ms" '{print ($14 + $15) * t}' "/proc/$stoad_pid/stat"; }
metrics=http://127.0.0.1:$oport/metrics
echo "bench-metrics: $N tools ($((2 * N)) MCP tools), traffic on $BUSY, $SCRAPES scrapes, load $(cut -d' ' -f1-3 /proc/loadavg)"
for enc in gzip plain; do
	hdr=()
	[[ $enc == gzip ]] && hdr=(-H 'Accept-Encoding: gzip')
	bytes=$(curl -s "${hdr[@]}" -o /dev/null -w '%{size_download}' "$metrics")
	c0=$(stoad_ms)
	for ((k = 0; k < SCRAPES; k++)); do
		curl -s "${hdr[@]}" -o /dev/null "$metrics"
	done
	c1=$(stoad_ms)
	printf '%-6s %8.2f ms CPU per scrape   %10d bytes\n' "$enc" "$(awk -v a=$((c1 - c0)) -v n="$SCRAPES" 'BEGIN{print a/n}')" "$bytes"
done
