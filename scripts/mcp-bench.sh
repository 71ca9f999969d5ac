#!/usr/bin/env bash
# MCP performance figures (issue 4), measured in one run on loopback through
# a real stoad against examples/upstreams: tools/call req/s and p99 over
# Streamable HTTP vs (a) the same request proxied as plain HTTP and (b) a
# reference MCP server on the official Go SDK; and tools/list first-page
# latency for a tenant with 10,000 tools. Prints a table (also written to
# $OUT, default bin/mcp-bench.txt). Needs wrk.
#
#   ROUNDS=3 DURATION=8s CONNS=32 bash scripts/mcp-bench.sh   (rounds interleaved)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "mcp-bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
mkdir -p bin
OUT=${OUT:-$PWD/bin/mcp-bench.txt}
STOA_MCP_BENCH=1 STOA_MCP_BENCH_ROUNDS=${ROUNDS:-3} STOA_MCP_BENCH_DURATION=${DURATION:-8s} STOA_MCP_BENCH_CONNS=${CONNS:-32} STOA_MCP_BENCH_OUT=$OUT \
	go test -count=1 -timeout 20m -run '^TestMCPPerf$' -v ./test/e2e/ >"${OUT%.txt}.log" 2>&1 || {
	tail -50 "${OUT%.txt}.log" >&2
	exit 1
}
cat "$OUT"
