#!/usr/bin/env bash
# bench-download: stoad's resident memory while it proxies large downloads.
# Starts a generating upstream (nothing is stored), stoad with one Tool in
# front of it, then N parallel downloads of SIZE bytes each (half with
# Content-Length, half chunked), sampling stoad's VmRSS every 0.1 s.
#   N=4 SIZE=1073741824 bash scripts/bench-download.sh
# Prints idle, peak and after-download RSS. BIN (default ./bin) must hold
# stoad and stoa (make build).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$root/bin}
N=${N:-4}
SIZE=${SIZE:-1073741824}
PORT=${PORT:-18190}
UPORT=${UPORT:-18191}
tmp=$(mktemp -d -t stoa-benchdl.XXXXXX)
export STOA_SOCKET=$tmp/s.sock
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

cat >"$tmp/upstream.go" <<'GO'
package main

import (
	"net/http"
	"os"
	"strconv"
)

func main() {
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	http.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		}
		for n > 0 {
			m := min(n, int64(len(buf)))
			if _, err := w.Write(buf[:m]); err != nil {
				return
			}
			n -= m
		}
	})
	_ = http.ListenAndServe("127.0.0.1:"+os.Args[1], nil)
}
GO
(cd "$tmp" && go build -o upstream upstream.go)
"$tmp/upstream" "$UPORT" &
pids+=($!)

cat >"$tmp/dl.yaml" <<YAML
apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata: {name: dl}
---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: files, namespace: dl}
spec:
  upstream: http://127.0.0.1:$UPORT
  route: {pathPrefix: /}
  timeouts: {total: 30m, header: 60s}
---
apiVersion: stoa.io/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  limits: {writeTimeout: 30m}
YAML
"$BIN/stoad" --state-dir "$tmp/state" --socket "$STOA_SOCKET" --mcp-socket "$tmp/m.sock" \
	--listen 127.0.0.1:$PORT --ops-listen 127.0.0.1:$((PORT + 2)) --log-level warn &
stoad_pid=$!
pids+=($stoad_pid)
for _ in $(seq 600); do "$BIN/stoa" status >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN/stoa" apply -f "$tmp/dl.yaml" >/dev/null

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$stoad_pid/status"; }
curl -s -o /dev/null "http://127.0.0.1:$PORT/big?n=1000" # warm the pool
sleep 1
idle=$(rss)
peak=$idle
start=$(date +%s.%N)
dl=()
for i in $(seq "$N"); do
	q="n=$SIZE"
	((i % 2 == 0)) && q="$q&chunked=1"
	curl -sS -o /dev/null -w "download $i: %{http_code} %{size_download} bytes\n" "http://127.0.0.1:$PORT/big?$q" >&2 &
	dl+=($!)
done
while :; do
	running=0
	for p in "${dl[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
	r=$(rss)
	((r > peak)) && peak=$r
	((running)) || break
	sleep 0.1
done
wait "${dl[@]}" || true
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
sleep 1
after=$(rss)
printf 'stoad RSS: idle %d MiB, peak %d MiB during %d x %d MiB downloads (%.1f s), %d MiB after\n' \
	$((idle / 1024)) $((peak / 1024)) "$N" $((SIZE >> 20)) "$secs" $((after / 1024))
