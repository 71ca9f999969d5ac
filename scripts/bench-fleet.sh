#!/usr/bin/env bash
# make bench-fleet: issue 14's fleet figures (docs/fleet.md, "Figures on
# real binaries"; docs/performance.md). Two parts, PART=all|sync|cpu:
#
#  sync  TestFleetNetnsBench (test/e2e/fleet_netns_bench_test.go): a control
#        plane on PostgreSQL with 10,000 tools and data planes in network
#        namespaces (real stoad binaries, root): a one-tool change's way to
#        all three (p50/p99 over CHANGES changes), the bytes sent for it,
#        and a new data plane's first sync. TOOLS=10000 CHANGES=50.
#  cpu   proxy CPU per request with limits shared through Redis vs local
#        limits: two stoads on loopback routing / to the harness upstream
#        (127.0.0.1:18081) with one rate limit high enough never to refuse,
#        one with limits.backend local, one with redis (the Redis at
#        REDIS=127.0.0.1:6379, under a key prefix of its own, deleted at
#        the end), measured in the same run of ../shared/bench/run.sh
#        (interleaved, ROUNDS, DURATION… pass through), which reports proxy
#        CPU µs/request for each. redis-server's own CPU is not charged to
#        either: it is a shared service, like the upstream.
#        CALLGRIND=1: ../shared/bench/callgrind.sh instead, user-space
#        instructions per request of each (every thread, the lease refills
#        included), independent of the machine's load; N, WINDOWS, CONC
#        pass through.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$root/bin}
PART=${PART:-all}
TOOLS=${TOOLS:-10000}
CHANGES=${CHANGES:-50}
REDIS=${REDIS:-127.0.0.1:6379}
bench=$root/../shared/bench
[[ -d $bench ]] || bench=$root/../../shared/bench
HARNESS=${HARNESS:-$bench/run.sh}

tmp=$(mktemp -d -t stoa-fleetbench.XXXXXX)
prefix="stoa-bench-fleet-$$:"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [[ $PART != sync ]] && command -v redis-cli >/dev/null; then
		redis-cli -h "${REDIS%:*}" -p "${REDIS##*:}" --scan --pattern "$prefix*" 2>/dev/null |
			xargs -r redis-cli -h "${REDIS%:*}" -p "${REDIS##*:}" del >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

if [[ $PART == all || $PART == sync ]]; then
	[[ $(id -u) == 0 ]] || { echo "bench-fleet: the sync part makes network namespaces: run as root (or PART=cpu)" >&2; exit 2; }
	echo "bench-fleet: sync, $TOOLS tools, $CHANGES one-tool changes (real stoad binaries in network namespaces)" >&2
	(cd "$root" && STOA_FLEET_BENCH=1 STOA_FLEET_BENCH_TOOLS=$TOOLS STOA_FLEET_BENCH_CHANGES=$CHANGES \
		STOA_FLEET_BENCH_OUT=$tmp/sync.txt go test -count=1 -timeout 30m -run '^TestFleetNetnsBench$' -v ./test/e2e/) |
		grep -v '^        time=' | grep -v '^=== RUN'
	cat "$tmp/sync.txt"
fi

[[ $PART == all || $PART == cpu ]] || exit 0

# One stoad: backend local|redis, proxy port, ops port.
start_stoad() {
	local backend=$1 port=$2 ops=$3 dir=$tmp/$1
	mkdir -p "$dir"
	local gw="  routing:
    grants: [{tenant: bench, pathPrefixes: [/]}]"
	if [[ $backend == redis ]]; then
		gw="$gw
  limits: {backend: redis}
  redis: {address: \"$REDIS\", prefix: \"$prefix\", failMode: open, timeout: 2s}"
	fi
	cat >"$dir/bench.yaml" <<YAML
apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata: {name: bench}
---
apiVersion: stoa.io/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
$gw
---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: root, namespace: bench}
spec:
  upstream: http://127.0.0.1:18081
  route: {pathPrefix: /}
  auth: {type: none}
  rateLimit: 1000000/s
YAML
	args=(--state-dir "$dir/state" --socket "$dir/s.sock" --mcp-socket "$dir/m.sock"
		--listen "127.0.0.1:$port" --ops-listen "127.0.0.1:$ops" --log-level warn)
	"$BIN/stoad" "${args[@]}" &
	pids+=($!)
	for _ in $(seq 100); do STOA_SOCKET=$dir/s.sock "$BIN/stoa" status >/dev/null 2>&1 && break; sleep 0.1; done
	STOA_SOCKET=$dir/s.sock "$BIN/stoa" apply -f "$dir/bench.yaml" >/dev/null
	STOA_SOCKET=$dir/s.sock "$BIN/stoa" status | grep -E '^ *limits' >&2 || true
}
if [[ ${CALLGRIND:-0} == 1 ]]; then
	# Configured natively, then started again under valgrind on the same
	# state directory, one after the other.
	for b in local redis; do
		port=18090; [[ $b == redis ]] && port=18092
		start_stoad $b $port $((port + 1))
		kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
		echo "bench-fleet: stoad with $b limits under callgrind" >&2
		PROXY_URL=http://127.0.0.1:$port/ PROXY_CMD="$BIN/stoad ${args[*]}" bash "$bench/callgrind.sh"
	done
	exit
fi
start_stoad local 18090 18091
start_stoad redis 18092 18093
echo "bench-fleet: cpu, stoad-local pid ${pids[0]} on :18090, stoad-redis pid ${pids[1]} on :18092 (redis $REDIS)" >&2
TARGETS=${TARGETS:-direct} EXTRA_TARGETS="stoad-local=http://127.0.0.1:18090/ stoad-redis=http://127.0.0.1:18092/" bash "$HARNESS"
# The redis stoad's own view: how often a request waited for Redis.
curl -fsS http://127.0.0.1:18093/metrics | grep -E '^stoa_limits_redis_(calls|sync_calls|errors)_total' >&2 || true
