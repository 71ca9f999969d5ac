#!/usr/bin/env bash
# make bench-proxy: run ../shared/bench/run.sh with stoad in the stoad slot,
# in one of two configurations (MODE=plain|auth):
#   plain  one Tool routing / to 127.0.0.1:18081, no auth, no limits
#   auth   the same with API-key auth, a rate limit high enough never to
#          reject, and metrics (always on)
# TRACING=<ratio> (0 to 1) turns stoad's OpenTelemetry tracing on at that
# sample ratio, exporting over OTLP/HTTP to a discarding sink on
# 127.0.0.1:18095 (a separate process: its CPU is not stoad's); the
# default, off, leaves spec.tracing out. Compare TRACING=1 with TRACING=off
# runs, alternated, by proxy CPU per request (docs/performance.md).
# TRACING_QUEUE sets spec.tracing.queueSize (default 2048; a high request rate
# at 100 % sampling wants 8192 or more, docs/tracing.md).
# Other knobs (ROUNDS, DURATION, TARGETS, ...) pass through to run.sh.
#
# CALLGRIND=1 runs ../shared/bench/callgrind.sh instead: user-space
# instructions per proxied request (deterministic, independent of the
# machine's load). stoad is configured once natively, stopped, and started
# again under valgrind on the same state directory; in auth mode every
# request carries the API key (HEADER). N, WINDOWS, CONC pass through.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$root/bin}
MODE=${MODE:-auth}
TRACING=${TRACING:-off}
SINK_PORT=18095
# The shared harness sits beside the checkout (../shared), or beside the
# directory of worktrees (../../shared).
bench=$root/../shared/bench
[[ -d $bench ]] || bench=$root/../../shared/bench
HARNESS=${HARNESS:-$bench/run.sh}
CALLGRIND=${CALLGRIND:-0}
CG_HARNESS=${CG_HARNESS:-$bench/callgrind.sh}
PORT=18090
tmp=$(mktemp -d -t stoa-benchp.XXXXXX)
export STOA_SOCKET=$tmp/s.sock
stoad_pid=
sink_pid=
cleanup() {
	[[ -n $stoad_pid ]] && kill "$stoad_pid" 2>/dev/null
	[[ -n $sink_pid ]] && kill "$sink_pid" 2>/dev/null
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

auth=none; limit=""
if [[ $MODE == auth ]]; then auth=apiKey; limit="  rateLimit: 100000000/s"; fi
tracing=""
if [[ $TRACING != off ]]; then
	tracing="  tracing: {enabled: true, endpoint: http://127.0.0.1:$SINK_PORT/v1/traces, sampleRatio: $TRACING, queueSize: ${TRACING_QUEUE:-2048}}"
	# An OTLP/HTTP endpoint that reads each export request and answers an
	# empty ExportTraceServiceResponse, as a collector does.
	python3 - "$SINK_PORT" <<'PY' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
	sink_pid=$!
fi
cat >"$tmp/bench.yaml" <<YAML
apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata: {name: bench}
---
# A route outside /bench/ needs a cluster admin's grant; / is grantable
# while bench is the only tenant.
apiVersion: stoa.io/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  routing:
    grants: [{tenant: bench, pathPrefixes: [/]}]
$tracing
---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: root, namespace: bench}
spec:
  upstream: http://127.0.0.1:18081
  route: {pathPrefix: /}
  auth: {type: $auth}
$limit
---
apiVersion: stoa.io/v1alpha1
kind: Consumer
metadata: {name: wrk, namespace: bench}
---
# API-key callers need an active subscription; the quota is counted on
# every call but never reached.
apiVersion: stoa.io/v1alpha1
kind: Plan
metadata: {name: bench, namespace: bench}
spec:
  quota: {daily: 1000000000000}
---
apiVersion: stoa.io/v1alpha1
kind: Subscription
metadata: {name: wrk-root, namespace: bench}
spec: {consumer: wrk, plan: bench, tool: root}
YAML
# The harness starts its upstream itself; stoad only needs it at request time.
stoad_args=(--state-dir "$tmp/state" --socket "$STOA_SOCKET" --mcp-socket "$tmp/m.sock"
	--listen 127.0.0.1:$PORT --ops-listen 127.0.0.1:18091 --log-level warn)
${STOAD_GOMAXPROCS:+env GOMAXPROCS=$STOAD_GOMAXPROCS} "$BIN/stoad" "${stoad_args[@]}" &
stoad_pid=$!
for _ in $(seq 100); do "$BIN/stoa" status >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN/stoa" apply -f "$tmp/bench.yaml" >/dev/null
if [[ $CALLGRIND == 1 ]]; then
	header=""
	if [[ $MODE == auth ]]; then
		header="X-Api-Key: $("$BIN/stoa" keys create --consumer wrk -n bench 2>/dev/null)"
	fi
	kill "$stoad_pid"; wait "$stoad_pid" 2>/dev/null || true; stoad_pid=
	echo "bench-proxy: MODE=$MODE under callgrind" >&2
	HEADER=$header PROXY_URL=http://127.0.0.1:$PORT/ PROXY_CMD="$BIN/stoad ${stoad_args[*]}" bash "$CG_HARNESS"
	exit
fi
if [[ $MODE == auth ]]; then
	# The wrappers shadow wrk and curl, so the harness would not notice a
	# missing wrk: install it here.
	command -v wrk >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	export STOA_BENCH_KEY=$("$BIN/stoa" keys create --consumer wrk -n bench 2>/dev/null)
	export STOA_BENCH_PORT=$PORT
	export PATH=$root/scripts/bench:$PATH
fi
echo "bench-proxy: MODE=$MODE TRACING=$TRACING stoad pid $stoad_pid on 127.0.0.1:$PORT" >&2
STOAD_URL=http://127.0.0.1:$PORT/ STOAD_PID=$stoad_pid bash "$HARNESS"
if [[ $TRACING != off ]]; then
	# Whether the spans were exported, or dropped by a full queue.
	"$BIN/stoa" status 2>/dev/null | grep -i tracing >&2 || true
fi
