#!/usr/bin/env bash
# bench.sh prints how fast one source's unwanted traffic is discarded by XDP
# (generic mode, and native for reference), by iptables -t raw DROP, and in
# userspace at accept time, on veth pairs between throwaway namespaces.
# Needs root. STOA_BENCH_ROUNDS / STOA_BENCH_DURATION tune it.
# For the same comparison through the real stoad, as CPU time per discarded
# packet, and a client's throughput under a flood: scripts/bench-xdp.sh.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "bench: needs root (network namespaces and XDP)" >&2
	exit 1
fi
command -v iptables >/dev/null || echo "bench: iptables not installed; its row is skipped (apt-get install iptables)" >&2
cd "$root"
exec go test -tags xdpbench -count=1 -run '^TestDropRates$' -v ./pkg/xdp
