#!/usr/bin/env bash
# bench-proxy-kernel.sh: the kernel side of proxying, per request, for stoad
# builds side by side with nginx (and the bare fasthttp proxy): CPU, context
# switches (/proc/PID/task/*/status), and with PERF=1 system calls, EAGAIN
# returns, reads, writes, epoll waits, futex calls and sleeps (perf stat on
# syscall tracepoints; adds its own overhead, alike for every target).
# wrk -t2 -cCONNS, DUR seconds after a 2 s warm-up, targets interleaved,
# ROUNDS rounds; one tab-separated line per run. Ports 28081-28095 and
# 28191-28195, so it runs beside ../shared/bench/run.sh.
#
#   BINS="before=/tmp/main-bin after=bin" ROUNDS=3 DUR=8 PERF=0 bash scripts/bench-proxy-kernel.sh
#   (each dir holds stoa and stoad; "name=dir@VAR=x,VAR2=y" runs that
#   build with those environment variables, e.g. after1=bin@GOMAXPROCS=1; NGINX=0 leaves nginx out, REF=1 adds
#   the bare fasthttp proxy, MODE=plain drops auth and limits; GMP sets
#   stoad's GOMAXPROCS; NGINX_FWD=1 adds "nginxfwd", nginx doing the header
#   work stoad's rules require: X-Forwarded-For/-Proto/-Host, X-Request-Id,
#   X-Stoa-Tenant/-Consumer and the client's Host upstream, the upstream's
#   Server, X-Request-Id and RateLimit-* back to the client, so the upstream
#   and wrk parse the same header bytes as behind stoad)
# Besides the proxy's: the upstream's CPU and context switches and wrk's CPU
# per request (up_cpu_us_req, up_ctxsw_req, wrk_cpu_us_req; with PERF=1 also
# the upstream's epoll waits and futex calls, up_epoll_req, up_futex_req);
# TCP segments sent and delayed ACKs per request in the whole network
# namespace (segs_req, delacks_req: 4 data segments per proxied request,
# anything above is ACKs; run it under ip netns exec for clean counts).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench=$root/../shared/bench
[[ -d $bench ]] || bench=$root/../../shared/bench
BINS=${BINS:-"stoad=$root/bin"}
ROUNDS=${ROUNDS:-2}; DUR=${DUR:-5}; CONNS=${CONNS:-64}; PERF=${PERF:-1}; MODE=${MODE:-auth}
T=$(mktemp -d -t stoa-kbench.XXXXXX); mkdir -p $T/nginx
(cd "$bench/upstream" && go build -o "$T/upstream" .) || exit 1
if [[ ${REF:-0} == 1 ]]; then (cd "$bench/refproxy" && go build -o "$T/refproxy" .) || exit 1; fi
# The specs of make bench-proxy, upstream moved to 28081.
awk '/cat >"\$tmp\/bench.yaml" <<YAML/{f=1;next} /^YAML$/{f=0} f' "$root/scripts/bench-proxy.sh" | sed 's/\$auth/__AUTH__/; s/^\$limit$/__LIMIT__/; /^\$tracing$/d' >"$T/bench.yaml.in"
pids=()
cleanup() { for p in "${pids[@]}"; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
$T/upstream -addr 127.0.0.1:28081 >$T/up.log 2>&1 & pids+=($!); UPID=$!
declare -A URL PID HDR
names=()
port=28090
for spec in $BINS; do
  n=${spec%%=*}; b=${spec#*=}; port=$((port+1)); benv=()
  if [[ $b == *@* ]]; then IFS=, read -r -a benv <<<"${b#*@}"; b=${b%%@*}; fi
  d=$T/$n; mkdir -p $d
  auth=none; limit=""
  if [[ $MODE == auth ]]; then auth=apiKey; limit="  rateLimit: 100000000/s"; fi
  sed -e "s#127.0.0.1:18081#127.0.0.1:28081#; s#__AUTH__#$auth#; s#__LIMIT__#$limit#" $T/bench.yaml.in > $d/b.yaml
  export STOA_SOCKET=$d/s.sock
  ${GMP:+env GOMAXPROCS=$GMP} ${ENVX:-} env "${benv[@]}" $b/stoad --state-dir $d/state --socket $d/s.sock --mcp-socket $d/m.sock --listen 127.0.0.1:$port --ops-listen 127.0.0.1:$((port+100)) --log-level warn >$d/log 2>&1 &
  pids+=($!); PID[$n]=$!
  for _ in $(seq 100); do $b/stoa status >/dev/null 2>&1 && break; sleep 0.1; done
  $b/stoa apply -f $d/b.yaml >/dev/null || exit 1
  if [[ $MODE == auth ]]; then HDR[$n]="X-Api-Key: $($b/stoa keys create --consumer wrk -n bench 2>/dev/null)"; else HDR[$n]="X-Foo: bar"; fi
  URL[$n]=http://127.0.0.1:$port/; names+=($n)
done
if [[ ${NGINX:-1} == 1 ]]; then
  sed -e "s#/tmp/stoad-bench#$T#g" -e 's#127.0.0.1:18081#127.0.0.1:28081#; s#127.0.0.1:18082#127.0.0.1:28082#; s#127.0.0.1:18084#127.0.0.1:28084#' "$bench/conf/nginx.conf" > $T/nginx.conf
  nginx -p $T/nginx/ -e $T/nginx/error.log -c $T/nginx.conf >$T/nginx.log 2>&1 & pids+=($!); PID[nginx]=$!
  URL[nginx]=http://127.0.0.1:28082/; HDR[nginx]="X-Foo: bar"; names+=(nginx)
fi
if [[ ${NGINX_FWD:-0} == 1 ]]; then
  mkdir -p $T/nginxfwd
  cat >$T/nginxfwd.conf <<NGX
daemon off;
master_process on;
worker_processes 2;
pid $T/nginxfwd.pid;
error_log $T/nginxfwd/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    client_body_temp_path $T/nginxfwd/cb; proxy_temp_path $T/nginxfwd/p;
    fastcgi_temp_path $T/nginxfwd/f; uwsgi_temp_path $T/nginxfwd/u; scgi_temp_path $T/nginxfwd/s;
    keepalive_requests 1000000; keepalive_timeout 75s;
    server_tokens off;
    upstream u { server 127.0.0.1:28081; keepalive 128; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:28087 backlog=4096;
        location / {
            proxy_pass http://u;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Api-Key "";
            proxy_set_header X-Stoa-Tenant bench;
            proxy_set_header X-Stoa-Consumer wrk;
            proxy_set_header X-Request-Id \$request_id;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_pass_header Server;
            add_header RateLimit-Limit 100000000;
            add_header RateLimit-Remaining 99999999;
            add_header RateLimit-Reset 1;
            add_header X-Request-Id \$request_id;
        }
    }
}
NGX
  nginx -p $T/nginxfwd/ -e $T/nginxfwd/error.log -c $T/nginxfwd.conf >$T/nginxfwd.log 2>&1 & pids+=($!); PID[nginxfwd]=$!
  URL[nginxfwd]=http://127.0.0.1:28087/; HDR[nginxfwd]="${HDR[${names[0]}]}"; names+=(nginxfwd)
fi
if [[ ${REF:-0} == 1 ]]; then
  $T/refproxy -mode fasthttp -listen 127.0.0.1:28085 -upstream 127.0.0.1:28081 >$T/ref.log 2>&1 & pids+=($!); PID[ref]=$!
  URL[ref]=http://127.0.0.1:28085/; HDR[ref]="X-Foo: bar"; names+=(ref)
fi
sleep 1
for n in "${names[@]}"; do c=$(curl -s -H "${HDR[$n]}" ${URL[$n]} | wc -c); echo "check $n: $c bytes" >&2; done
tree() { local p=$1; echo $p; for c in $(pgrep -P $p); do tree $c; done; }
ctx() { local s=0; for p in "$@"; do for f in /proc/$p/task/*/status; do s=$((s + $(awk '/ctxt_switches/{s+=$2} END{print s+0}' $f 2>/dev/null || echo 0))); done; done; echo $s; }
# TCP segments sent and delayed ACKs, from this network namespace's
# counters (run the script in a namespace of its own, e.g.
# ip netns exec, to keep other jobs' loopback traffic out of them).
tcpc() { awk '$1=="Tcp:" && !h {for(i=1;i<=NF;i++) c[$i]=i; h=1; next} $1=="Tcp:" {o=$c["OutSegs"]} END{printf "%d ", o}' /proc/net/snmp; awk '$1=="TcpExt:" && !h {for(i=1;i<=NF;i++) c[$i]=i; h=1; next} $1=="TcpExt:" {print $c["DelayedACKs"]}' /proc/net/netstat; }
ticks() { local t=0; for p in "$@"; do read -r -a f <<<"$(sed 's/.*) //' /proc/$p/stat)"; t=$((t+f[11]+f[12])); done; echo $t; }
printf 'round\ttarget\trps\tcpu_us_req\tctxsw_req\tup_ctxsw_req\twrk_cpu_us_req\tup_cpu_us_req\tsyscalls_req\treads_req\teagain_req\twrites_req\tepoll_req\tfutex_req\tnanosleep_req\tup_epoll_req\tup_futex_req\tsegs_req\tdelacks_req\n'
for ((r=1;r<=ROUNDS;r++)); do
  for n in "${names[@]}"; do
    wrk -t2 -c$CONNS -d2s -H "${HDR[$n]}" ${URL[$n]} >/dev/null 2>&1
    ps=($(tree ${PID[$n]})); plist=$(IFS=,; echo "${ps[*]}")
    c0=$(ctx "${ps[@]}"); u0=$(ctx $UPID); k0=$(ticks "${ps[@]}"); uk0=$(ticks $UPID)
    if [[ $PERF == 1 ]]; then
      perf stat -x, -o $T/perf.$n.$r -e raw_syscalls:sys_enter -e syscalls:sys_enter_read -e raw_syscalls:sys_exit --filter 'ret == -11' -e syscalls:sys_enter_recvfrom -e syscalls:sys_enter_readv -e syscalls:sys_enter_write -e syscalls:sys_enter_writev -e syscalls:sys_enter_sendto -e syscalls:sys_enter_epoll_pwait -e syscalls:sys_enter_epoll_wait -e syscalls:sys_enter_futex -e syscalls:sys_enter_nanosleep -e syscalls:sys_enter_sched_yield -p $plist -- sleep $((DUR+1)) 2>/dev/null &
      pp=$!
      perf stat -x, -o $T/perfup.$n.$r -e syscalls:sys_enter_epoll_pwait -e syscalls:sys_enter_futex -p $UPID -- sleep $((DUR+1)) 2>/dev/null &
      pu=$!; sleep 0.5
    fi
    read -r sg0 da0 <<<"$(tcpc)"
    t0=$(date +%s.%N); times > $T/t0
    wrk -t2 -c$CONNS -d${DUR}s -H "${HDR[$n]}" ${URL[$n]} > $T/wrk.$n.$r 2>&1
    times > $T/t1
    read -r sg1 da1 <<<"$(tcpc)"
    c1=$(ctx "${ps[@]}"); u1=$(ctx $UPID); k1=$(ticks "${ps[@]}"); uk1=$(ticks $UPID)
    [[ $PERF == 1 ]] && wait $pp $pu
    reqs=$(awk '/requests in/{print $1}' $T/wrk.$n.$r); rps=$(awk '/^Requests\/sec/{print $2}' $T/wrk.$n.$r)
    w=$(awk 'NR==2{split($1,u,/[ms]/);split($2,s,/[ms]/);print (u[1]*60+u[2]+s[1]*60+s[2])*1e6}' $T/t1); w0=$(awk 'NR==2{split($1,u,/[ms]/);split($2,s,/[ms]/);print (u[1]*60+u[2]+s[1]*60+s[2])*1e6}' $T/t0)
    if [[ $PERF == 1 ]]; then
      # perf ran DUR+1 s around a DUR s wrk: scale by wrk's share is not exact; counts are per request of the wrk run (idle time adds little)
      sc=$(awk -F, -v q=$reqs '{gsub(/ /,"",$1); v[$3]=$1} END{printf "%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.3f", v["raw_syscalls:sys_enter"]/q, (v["syscalls:sys_enter_read"]+v["syscalls:sys_enter_recvfrom"]+v["syscalls:sys_enter_readv"])/q, v["raw_syscalls:sys_exit"]/q, (v["syscalls:sys_enter_write"]+v["syscalls:sys_enter_writev"]+v["syscalls:sys_enter_sendto"])/q, (v["syscalls:sys_enter_epoll_pwait"]+v["syscalls:sys_enter_epoll_wait"])/q, v["syscalls:sys_enter_futex"]/q, (v["syscalls:sys_enter_nanosleep"]+v["syscalls:sys_enter_sched_yield"])/q}' $T/perf.$n.$r)
      sc+=$'\t'$(awk -F, -v q=$reqs '{gsub(/ /,"",$1); v[$3]=$1} END{printf "%.3f\t%.3f", v["syscalls:sys_enter_epoll_pwait"]/q, v["syscalls:sys_enter_futex"]/q}' $T/perfup.$n.$r)
    else sc="-"; fi
    awk -v OFS='\t' -v r=$r -v n=$n -v rps=$rps -v q=$reqs -v dk=$((k1-k0)) -v dc=$((c1-c0)) -v du=$((u1-u0)) -v dw=$(awk -v a=$w -v b=$w0 'BEGIN{print a-b}') -v duk=$((uk1-uk0)) -v sc="$sc" -v dsg=$((sg1-sg0)) -v dda=$((da1-da0)) 'BEGIN{print r,n,rps,sprintf("%.1f",dk*1e4/q),sprintf("%.3f",dc/q),sprintf("%.3f",du/q),sprintf("%.1f",dw/q),sprintf("%.1f",duk*1e4/q),sc,sprintf("%.3f",dsg/q),sprintf("%.4f",dda/q)}'
  done
done
