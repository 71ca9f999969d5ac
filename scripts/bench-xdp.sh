#!/usr/bin/env bash
# bench-xdp.sh measures the XDP limiter with the real stoad, on veth pairs
# between throwaway namespaces, XDP in native (driver) and generic mode side
# by side, with two traffic sources: socket buffers from the attacker's
# stack (as between containers) and XDP frames redirected into the veth (as
# a NIC driver hands them to native XDP):
#   - CPU time per discarded packet: XDP (deny list, over rate) vs
#     iptables -t raw DROP vs the kernel's TCP stack vs stoad's userspace
#     accept-time limiter (accept + reset);
#   - a legitimate client's throughput under a paced SYN flood, XDP native,
#     generic and off, as a ratio to its no-flood baseline and to a run with
#     the same flood discarded before the server (CPU 1 plays the server,
#     CPU 0 the outside world; the flood enters through the client's veth,
#     the server CPU's one receive queue, unless STOA_BENCH_INGRESS=split).
# The method is the doc comment of TestXDPBench (test/e2e/xdp_bench_test.go).
# Needs root, 2+ CPUs, iproute2, iptables, ethtool and util-linux (taskset,
# chrt, setpriv): apt-get install iproute2 iptables ethtool util-linux. Runs at
# nice -20 so that other jobs on the machine do not decide the client figures.
# Takes about seven minutes with the defaults. STOA_BENCH_PARTS (1,2),
# STOA_BENCH_ROUNDS (3), STOA_BENCH_DURATION (3s), STOA_BENCH_FLOOD_PPS
# (25000,50000), STOA_BENCH_FLOOD_SOURCES (stack,frames) and
# STOA_BENCH_INGRESS (shared, or split) tune it; more in the doc comment.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "bench-xdp: needs root (network namespaces, XDP, iptables)" >&2
	exit 1
fi
for pair in ip:iproute2 iptables:iptables ethtool:ethtool taskset:util-linux chrt:util-linux setpriv:util-linux; do
	if ! command -v "${pair%%:*}" >/dev/null; then
		echo "bench-xdp: needs ${pair%%:*} (apt-get install ${pair#*:})" >&2
		exit 1
	fi
done
cd "$root"
exec nice -n -20 go test -tags xdpbench -count=1 -timeout 30m -run '^TestXDPBench$' -v ./test/e2e
