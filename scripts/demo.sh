#!/usr/bin/env bash
# make demo: start stoad on embedded defaults in a temporary state dir, apply
# examples/quickstart, show the tools and an empty diff, then keep serving
# until Ctrl-C. DEMO_EXIT=1 stops right after the walkthrough (used by tests).
# Addresses, when the defaults are taken: STOA_DEMO_LISTEN (proxy and MCP,
# 127.0.0.1:8080), STOA_DEMO_OPS (metrics, 127.0.0.1:9090) and
# STOA_DEMO_UPSTREAMS (the example APIs, 127.0.0.1:9001).
set -euo pipefail
BIN=${BIN:-$(pwd)/bin}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d -t stoa-demo.XXXXXX)
export STOA_SOCKET=$tmp/stoad.sock
stoad_pid=
up_pid=
cleanup() {
	for p in $stoad_pid $up_pid; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		fi
	done
	rm -rf "$tmp"
	echo "demo stopped; removed $tmp"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

LISTEN=${STOA_DEMO_LISTEN:-127.0.0.1:8080}
OPS=${STOA_DEMO_OPS:-127.0.0.1:9090}
UPSTREAMS=${STOA_DEMO_UPSTREAMS:-127.0.0.1:9001}
GW=http://$LISTEN
specs=$root/examples/quickstart
if [[ $UPSTREAMS != 127.0.0.1:9001 ]]; then
	# The quickstart names its upstreams on 127.0.0.1:9001: point a copy elsewhere.
	mkdir "$tmp/quickstart"
	for f in "$specs"/*.yaml; do sed "s/127\.0\.0\.1:9001/$UPSTREAMS/g" "$f" >"$tmp/quickstart/${f##*/}"; done
	specs=$tmp/quickstart
fi
# The example APIs behind examples/quickstart (billing, inventory, weather).
"$BIN/upstreams" -listen "$UPSTREAMS" 2>"$tmp/upstreams.log" &
up_pid=$!
"$BIN/stoad" --state-dir "$tmp/state" --socket "$STOA_SOCKET" --mcp-socket "$tmp/mcp.sock" \
	--listen "$LISTEN" --ops-listen "$OPS" --log-level warn &
stoad_pid=$!
for _ in $(seq 100); do
	[[ -S $STOA_SOCKET ]] && "$BIN/stoa" status >/dev/null 2>&1 && break
	kill -0 "$stoad_pid" 2>/dev/null || {
		echo "stoad exited early; is $LISTEN or $OPS taken? pick others: STOA_DEMO_LISTEN=127.0.0.1:18080 STOA_DEMO_OPS=127.0.0.1:19090 make demo" >&2
		exit 1
	}
	sleep 0.1
done
if ! kill -0 "$up_pid" 2>/dev/null; then
	cat "$tmp/upstreams.log" >&2
	echo "the example upstreams could not start; is $UPSTREAMS taken? pick another: STOA_DEMO_UPSTREAMS=127.0.0.1:19001 make demo" >&2
	exit 1
fi

step stoa validate -f examples/quickstart
"$BIN/stoa" validate -f "$specs"
step stoa apply -f examples/quickstart
"$BIN/stoa" apply -f "$specs"
step stoa get tools
"$BIN/stoa" get tools
step stoa diff -f examples/quickstart
"$BIN/stoa" diff -f "$specs" && echo "(exit 0: live state matches the files)"
step stoa status
"$BIN/stoa" status

step "stoa keys create --consumer web-shop -n acme"
KEY=$("$BIN/stoa" keys create --consumer web-shop -n acme)
echo "$KEY"

# q quotes one word for a shell: as is when it is plain, else in single
# quotes. Every command the demo prints is run from that same text, so
# what you paste is what ran.
q() {
	if [[ $1 =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
		printf '%s' "$1"
	else
		printf "'%s'" "${1//\'/\'\\\'\'}"
	fi
}
# run COMMENT COMMAND: print "$ COMMAND   # COMMENT", then run it.
run() {
	printf '\n\033[1m$ %s\033[0m   # %s\n' "$2" "$1"
	bash -c "$2" || true
}
H=$(q "X-Api-Key: $KEY")
STATUS=$(q 'HTTP %{http_code}\n')
run "no key: 401 with a JSON error" \
	"curl -s -w $STATUS $(q "$GW/acme/billing-api/invoices/INV-1001")"
run "with the key: proxied; the upstream sees X-Stoa-Tenant/-Consumer" \
	"curl -s -w $STATUS -H $H $(q "$GW/acme/billing-api/invoices/INV-1001")"
run "acme's key on globex's route: 403, never reaches the upstream" \
	"curl -s -w $STATUS -H $H $(q "$GW/globex/weather-api/current/paris")"

cat <<'EOF'

# Every limit on a request's way applies at once, and the strictest one
# decides. For acme's inventory-api with web-shop's key: the tool (20/s,
# burst 40), the ToolSet acme-tools (1000/min, burst 17: the rate per
# second rounded up), the plan standard (50/s, burst 50) and the tenant
# (500/s). So at most 17 of a burst pass (fewer right after the calls
# above): the ToolSet refuses first. A 429 names the limit that refused:
# "limit" in its JSON body (operation, tool, toolset, tenant, plan or
# source), and RateLimit-Limit is that limit's count.
EOF
run "60 requests on one connection: the ToolSet's burst lets at most 17 through" \
	"curl -s -o /dev/null -w $(q '%{http_code}\n') -H $H $(q "$GW/acme/inventory-api/items/sku-[1-60]") | sort | uniq -c"
run "20 more, the last shown: 429 with Retry-After, RateLimit-* and a JSON body naming the limit" \
	"curl -si -o /dev/null -H $H $(q "$GW/acme/inventory-api/items/sku-[1-19]") $(q "$GW/acme/inventory-api/items/sku-20")"

if [[ ${DEMO_EXIT:-0} == 1 ]]; then exit 0; fi
printf '\nstoad is serving %s (state in %s). Try:\n  STOA_SOCKET=%s %s dashboard\n  curl -H %s %s\nPress Ctrl-C to stop.\n' "$GW" "$tmp" "$(q "$STOA_SOCKET")" "$(q "$BIN/stoa")" "$H" "$(q "$GW/acme/billing-api/invoices")"
wait "$stoad_pid"
