#!/usr/bin/env bash
# make demo: start stoad on embedded defaults in a temporary state dir, apply
# examples/quickstart, show the tools and an empty diff, then keep serving
# until Ctrl-C. DEMO_EXIT=1 stops right after the walkthrough (used by tests).
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
GW=http://$LISTEN
# The example APIs behind examples/quickstart (billing, inventory, weather).
"$BIN/upstreams" -listen 127.0.0.1:9001 2>"$tmp/upstreams.log" &
up_pid=$!
"$BIN/stoad" --state-dir "$tmp/state" --socket "$STOA_SOCKET" --mcp-socket "$tmp/mcp.sock" \
	--listen "$LISTEN" --ops-listen "${STOA_DEMO_OPS:-127.0.0.1:9090}" \
	--log-level warn &
stoad_pid=$!
for _ in $(seq 100); do
	[[ -S $STOA_SOCKET ]] && "$BIN/stoa" status >/dev/null 2>&1 && break
	kill -0 "$stoad_pid" 2>/dev/null || { echo "stoad exited early" >&2; exit 1; }
	sleep 0.1
done

step stoa validate -f examples/quickstart
"$BIN/stoa" validate -f "$root/examples/quickstart"
step stoa apply -f examples/quickstart
"$BIN/stoa" apply -f "$root/examples/quickstart"
step stoa get tools
"$BIN/stoa" get tools
step stoa diff -f examples/quickstart
"$BIN/stoa" diff -f "$root/examples/quickstart" && echo "(exit 0: live state matches the files)"
step stoa status
"$BIN/stoa" status

step "stoa keys create --consumer web-shop -n acme"
KEY=$("$BIN/stoa" keys create --consumer web-shop -n acme)
echo "$KEY"

show() { # show DESCRIPTION CURL-ARGS...: print the command, run it, print status and body
	printf '\n\033[1m$ curl %s\033[0m   # %s\n' "$*" "$DESC"
	curl -s -o "$tmp/body" -w '%{http_code}' "$@" >"$tmp/code" || true
	printf 'HTTP %s  %s\n' "$(cat "$tmp/code")" "$(head -c 300 "$tmp/body")"
}
DESC="no key: 401 with a JSON error" show "$GW/acme/billing-api/invoices/INV-1001"
DESC="with the key: proxied; the upstream sees X-Stoa-Tenant/-Consumer" show -H "X-Api-Key: $KEY" "$GW/acme/billing-api/invoices/INV-1001"
DESC="acme's key on globex's route: 403, never reaches the upstream" show -H "X-Api-Key: $KEY" "$GW/globex/weather-api/current/paris"
printf '\n\033[1m$ curl (60 requests on one connection) .../acme/inventory-api/items/sku-42\033[0m   # tool 20/s (burst 40), ToolSet 1000/min: the rest get 429\n'
urls=(); for i in $(seq 60); do urls+=(-o /dev/null "$GW/acme/inventory-api/items/sku-42"); done
curl -s -w "%{http_code}\n" -H "X-Api-Key: $KEY" "${urls[@]}" | sort | uniq -c
printf '\n\033[1m$ curl -i ... (the last of another burst)\033[0m   # a 429 carries Retry-After, RateLimit-* and a JSON body\n'
urls=(); for i in $(seq 20); do urls+=(-o "$tmp/body" "$GW/acme/inventory-api/items/sku-42"); done
curl -s -D "$tmp/headers" -H "X-Api-Key: $KEY" "${urls[@]}"
awk '/^HTTP\//{block=""} {block=block $0 "\n"} END{printf "%s", block}' "$tmp/headers" | tr -d '\r'
cat "$tmp/body"

if [[ ${DEMO_EXIT:-0} == 1 ]]; then exit 0; fi
printf '\nstoad is serving %s (state in %s). Try:\n  STOA_SOCKET=%s %s/stoa dashboard\n  curl -H "X-Api-Key: %s" %s/acme/billing-api/invoices\nPress Ctrl-C to stop.\n' "$GW" "$tmp" "$STOA_SOCKET" "$BIN" "$KEY" "$GW"
wait "$stoad_pid"
