#!/usr/bin/env bash
# meshgate's benchmark harness (`npm run bench`): one backend (nginx), the direct-to-backend ceiling, nginx and
# haproxy as reference proxies and meshgate (`meshgate local` on a generated config), all on 127.0.0.1 and
# measured in one interleaved run on this machine. Usage, scenarios and the meaning of every column:
# bench/README.md. Every load run is bounded by -d/-D and an outer `timeout`; every wait has a deadline; only
# processes this script started are stopped, by process group.
set -uo pipefail
set -m   # every background server gets its own process group (PGID = its PID): stop_all ends exactly those

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
APT_LINE='apt-get install -y wrk nginx-light haproxy nghttp2-client'

# ---------------------------------------------------------------- settings (environment, then flags)
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}                 # wrk -c for small, 16k, close
CONNS_UPLOAD=${CONNS_UPLOAD:-16}   # wrk -c for the 1 MiB uploads
H2_CONNS=${H2_CONNS:-8}            # h2load -c; x H2_STREAMS = the same 64 requests in flight as wrk -c64
H2_STREAMS=${H2_STREAMS:-8}
DUR_SMALL=${DUR_SMALL:-5}          # seconds per run
DUR_16K=${DUR_16K:-3}
DUR_UPLOAD=${DUR_UPLOAD:-3}
DUR_CLOSE=${DUR_CLOSE:-3}
DUR_C1=${DUR_C1:-2}
DUR_H2=${DUR_H2:-3}
DUR_HOSTS=${DUR_HOSTS:-3}
DUR_PINNED=${DUR_PINNED:-3}
WARMUP=${WARMUP:-2}
PUSHES=${PUSHES:-5}                # measurements per push kind
HOSTS=${HOSTS:-5000}               # 'hosts' scenario: hosts, VirtualServices, routes in the measured VirtualService
HOSTS_VS=${HOSTS_VS:-1000}
HOSTS_ROUTES=${HOSTS_ROUTES:-1000}
PUSH_VS=${PUSH_VS:-1000}           # 'push' scenario: VirtualServices and (never contacted) endpoints
PUSH_ENDPOINTS=${PUSH_ENDPOINTS:-10000}
PUSH_TIMEOUT_MS=${PUSH_TIMEOUT_MS:-10000}
READY_TIMEOUT=${READY_TIMEOUT:-30}       # seconds for a server to answer its first request
BIG_READY_TIMEOUT=${BIG_READY_TIMEOUT:-120}  # same, for meshgate with the 5,000-host / 10,000-endpoint configs
STOP_TIMEOUT=${STOP_TIMEOUT:-10}         # seconds between SIGTERM and SIGKILL
MESHGATE_BIND=${MESHGATE_BIND-127.0.0.1} # Gateway server `bind` (Istio field): the listener's address
MESHGATE=${MESHGATE:-$ROOT/bin/meshgate}
ALL_SCENARIOS="small 16k upload close c1 h2 hosts push"
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}
TARGETS=${TARGETS:-"direct nginx haproxy meshgate"}
CONCURRENCY=${CONCURRENCY:-}
PROFILE=0
OUT=${BENCH_OUT:-}

# Ports (all on 127.0.0.1). A meshgate instance at BASE uses BASE (listener, from the generated Service's
# targetPort), BASE+1 admin, BASE+2 status, BASE+3 metrics, BASE+4 xDS, BASE+5 merged metrics (if it has that flag).
UP_PORT=9001; UP_H2=9011; UPSTREAM=127.0.0.1:$UP_PORT
MG_BASE=9300; MG_NOTEL_BASE=9350; MG_JWT_BASE=9360; MG_AUTHZ_BASE=9370; MG_HOSTS_BASE=9380; MG_PUSH_BASE=9390

usage() {
  cat <<EOF
usage: bench/run.sh [options]       (npm run bench -- [options])
  --quick              smoke test: 1 round of 1-second runs, 3 pushes (about 2 minutes)
  --scenarios 'LIST'   any of: $ALL_SCENARIOS pinned   (default: all but pinned;
                       'memory' is an alias of 'hosts', which also measures memory at 5,000 hosts)
  --targets 'LIST'     any of: direct nginx haproxy meshgate nginx-2w meshgate-authz meshgate-jwt meshgate-notel  (default: $TARGETS);
                       direct and nginx are always measured: they are the ratios' bases
  --rounds N           rounds of the interleaved order (default $ROUNDS)
  --concurrency N[,M]  pass --concurrency N to meshgate (one meshgate target per value: meshgate-cN);
                       without it meshgate runs with its own default
  --profile            run meshgate under --cpu-prof; profiles land in the results directory
  --meshgate PATH      the meshgate executable (default: bin/meshgate of this checkout)
  --out DIR            results directory (default bench/results/<UTC stamp>)
  --list               print the targets, scenarios and ports, and exit
Lists may be separated by spaces or commas. Durations and sizes: see the environment variables in README.md.
EOF
}

words() { echo "$1" | tr ',' ' '; }
while [ $# -gt 0 ]; do
  case $1 in
    --quick) ROUNDS=1; DUR_SMALL=1; DUR_16K=1; DUR_UPLOAD=1; DUR_CLOSE=1; DUR_C1=1; DUR_H2=1; DUR_HOSTS=1; DUR_PINNED=1
             WARMUP=1; PUSHES=3; shift ;;
    --scenarios) SCENARIOS=$(words "$2"); shift 2 ;;
    --targets) TARGETS=$(words "$2"); shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --concurrency) CONCURRENCY=$(words "$2"); shift 2 ;;
    --profile) PROFILE=1; shift ;;
    --meshgate) MESHGATE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --list) LIST=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
SCENARIOS=$(for s in $SCENARIOS; do [ "$s" = memory ] && echo hosts || echo "$s"; done | awk '!seen[$0]++' | tr '\n' ' ')
for s in $SCENARIOS; do
  [[ " $ALL_SCENARIOS pinned " == *" $s "* ]] || { echo "bench: unknown scenario '$s' (known: $ALL_SCENARIOS pinned memory)" >&2; exit 2; }
done
for t in $TARGETS; do
  [[ " direct nginx haproxy meshgate nginx-2w meshgate-authz meshgate-jwt meshgate-notel " == *" $t "* ]] || { echo "bench: unknown target '$t' (known: direct nginx haproxy meshgate nginx-2w meshgate-authz meshgate-jwt meshgate-notel)" >&2; exit 2; }
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --rounds wants a positive integer" >&2; exit 2; }
for c in $CONCURRENCY; do [[ "$c" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --concurrency wants positive integers" >&2; exit 2; }; done
has_scenario() { [[ " $SCENARIOS " == *" $1 "* ]]; }
wants() { [[ " $TARGETS " == *" $1 "* ]]; }

# ---------------------------------------------------------------- targets
# T_PORT: HTTP/1.1 port; T_H2: h2c (prior knowledge) port, if any; T_SERVER: the started server whose process
# tree is the target (for CPU and memory); T_HOST: Host header; T_MULTI: uses more than one core.
# T_AUTH: an Authorization header value sent with every request (meshgate-jwt's token).
declare -A T_PORT T_H2 T_SERVER T_HOST T_MULTI T_AUTH SRV_PID MG_CONF MG_CONC MG_BASEP READY_MS
ORDER=(direct nginx)
T_PORT[direct]=$UP_PORT; T_H2[direct]=$UP_H2; T_SERVER[direct]=backend
T_PORT[nginx]=9101; T_H2[nginx]=9201; T_SERVER[nginx]=nginx
if wants nginx-2w; then ORDER+=(nginx-2w); T_PORT[nginx-2w]=9111; T_SERVER[nginx-2w]=nginx-2w; T_MULTI[nginx-2w]=1; fi
if wants haproxy; then ORDER+=(haproxy); T_PORT[haproxy]=9102; T_H2[haproxy]=9202; T_SERVER[haproxy]=haproxy; fi
MESHGATES=()
add_meshgate() {  # name base concurrency config-kind
  local n=$1
  T_PORT[$n]=$2; T_SERVER[$n]=$n; MG_BASEP[$n]=$2; MG_CONC[$n]=$3; MG_CONF[$n]=$4
  # h2c with prior knowledge on the HTTP listener, as Envoy's codec AUTO accepts it (probed before the h2 scenario)
  [ "$4" = one ] && T_H2[$n]=$2
  [ -n "$3" ] && [ "$3" -gt 1 ] && T_MULTI[$n]=1
}
if wants meshgate; then
  if [ -z "$CONCURRENCY" ]; then
    add_meshgate meshgate $MG_BASE "" one; MESHGATES+=(meshgate); ORDER+=(meshgate)
  else
    k=0
    for c in $CONCURRENCY; do
      add_meshgate "meshgate-c$c" $((MG_BASE + 10 * k)) "$c" one; MESHGATES+=("meshgate-c$c"); ORDER+=("meshgate-c$c"); k=$((k + 1))
    done
  fi
  # AuthorizationPolicy's cost (issue 13): the same config plus one DENY and one ALLOW policy, beside the others.
  if wants meshgate-authz; then
    add_meshgate meshgate-authz $MG_AUTHZ_BASE "${MG_CONC[${MESHGATES[0]}]}" authz; MESHGATES+=(meshgate-authz); ORDER+=(meshgate-authz)
  fi
  # JWT verification's cost: a RequestAuthentication, and a valid token on every request (gen-config --jwt).
  if wants meshgate-jwt; then
    add_meshgate meshgate-jwt $MG_JWT_BASE "${MG_CONC[${MESHGATES[0]}]}" jwt; MESHGATES+=(meshgate-jwt); ORDER+=(meshgate-jwt)
  fi
  # Istio's telemetry at its defaults costs (issue 14): the same config with the mesh's metrics providers and
  # tracing turned off, beside the default one (istio.stats on, tracing's 1 % sampling with no tracer).
  if wants meshgate-notel; then
    add_meshgate meshgate-notel $MG_NOTEL_BASE "${MG_CONC[${MESHGATES[0]}]}" notel; MESHGATES+=(meshgate-notel); ORDER+=(meshgate-notel)
  fi
  # The large configurations run with the first meshgate's concurrency, one at a time (started for their scenario).
  add_meshgate meshgate-5k $MG_HOSTS_BASE "${MG_CONC[${MESHGATES[0]}]}" hosts
  add_meshgate meshgate-push $MG_PUSH_BASE "${MG_CONC[${MESHGATES[0]}]}" push
fi
for t in "${!T_PORT[@]}"; do T_HOST[$t]=bench.example.com; done

if [ "${LIST:-0}" = 1 ]; then
  for t in "${ORDER[@]}" ${T_PORT[meshgate-5k]:+meshgate-5k meshgate-push}; do
    h2=${T_H2[$t]:--}; [ "${MG_CONF[$t]:-}" = one ] && h2="$h2 (if supported)"
    echo "$t http:127.0.0.1:${T_PORT[$t]} h2c:$h2 ${MG_CONF[$t]:+config:${MG_CONF[$t]} concurrency:${MG_CONC[$t]:-default} admin:$((T_PORT[$t] + 1))}"
  done
  echo "scenarios: $SCENARIOS"
  exit 0
fi

# ---------------------------------------------------------------- tools
missing=()
for tool in wrk nginx curl ss taskset timeout; do command -v "$tool" >/dev/null || missing+=("$tool"); done
wants haproxy && ! command -v haproxy >/dev/null && missing+=(haproxy)
has_scenario h2 && ! command -v h2load >/dev/null && missing+=("h2load (nghttp2-client)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: missing ${missing[*]}. Install the load generators and reference proxies (Debian/Ubuntu, as root):" >&2
  echo "  apt-get update && $APT_LINE" >&2
  exit 1
fi
# Node >= 24 for the harness's own scripts (TypeScript with type stripping): the project's own, as bin/meshgate.
NODE=$ROOT/node_modules/.bin/node
[ -x "$NODE" ] || NODE=$(command -v node || true)
if [ -z "$NODE" ] || ! "$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 24 ? 0 : 1)' 2>/dev/null; then
  echo "bench: needs Node.js >= 24: run 'npm ci' in $ROOT (it installs Node 24 as a devDependency)" >&2
  exit 1
fi
MG_FLAGS=""
if [ ${#MESHGATES[@]} -gt 0 ]; then
  if ! MG_HELP=$(timeout 30 "$MESHGATE" local --help 2>&1) || [[ "$MG_HELP" != *--config* ]]; then
    echo "bench: '$MESHGATE local --help' failed, so meshgate cannot be measured:" >&2
    echo "$MG_HELP" | head -15 | sed 's/^/  /' >&2
    echo "bench: to measure the reference proxies alone: bash bench/run.sh --targets direct,nginx,haproxy" >&2
    exit 1
  fi
  [[ "$MG_HELP" == *--drain-seconds* ]] && MG_FLAGS="--drain-seconds 0"
  [[ "$MG_HELP" == *--merged-metrics-port* ]] && MG_MERGED=1   # then on BASE+5 (its default, 15020, is one port for all)
  if [ -n "$CONCURRENCY" ] && [[ "$MG_HELP" != *--concurrency* ]]; then
    echo "bench: warning: 'meshgate local' has no --concurrency flag yet: the meshgate-cN targets all run with its default" >&2
    MG_NO_CONC=1
  fi
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------- ports: refuse to start on a taken one
plan_ports() {
  local t
  echo $UP_PORT $UP_H2
  for t in "${ORDER[@]}"; do [ "$t" = direct ] || echo "${T_PORT[$t]} ${T_H2[$t]:-}"; done
  for t in "${!MG_BASEP[@]}"; do seq "${MG_BASEP[$t]}" $((MG_BASEP[$t] + 5)); done
}
PORTS=$(plan_ports | tr ' ' '\n' | grep -v '^$' | sort -un | tr '\n' ' ')
taken=$(ss -ltnH | awk '{n=split($4, a, ":"); print a[n]}' | sort -un | while read -r p; do [[ " $PORTS " == *" $p "* ]] && echo -n "$p "; done)
if [ -n "$taken" ]; then
  echo "bench: ports already in use: $taken(the harness needs $PORTS). Stop whatever holds them; bench never stops processes it did not start." >&2
  exit 1
fi

# ---------------------------------------------------------------- results directory and scratch space
OUT=${OUT:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)}
[ -e "$OUT/results.jsonl" ] && { echo "bench: $OUT already holds results; choose another --out" >&2; exit 1; }
RUN=$OUT/run   # configs, pid files, nginx temp files, the 16 KiB and 1 MiB bodies
mkdir -p "$RUN/www" "$RUN/nginx-tmp" "$OUT/logs" "$OUT/raw" || exit 1
OUT=$(cd "$OUT" && pwd); RUN=$OUT/run
head -c 16384 /dev/zero | tr '\0' 'x' > "$RUN/www/16k"
head -c 1048576 /dev/zero | tr '\0' 'x' > "$RUN/upload-1m"
: > "$OUT/results.jsonl"; : > "$OUT/commands.txt"
START_TS=$(date +%s)
log() { printf '[%4ss] %s\n' "$(( $(date +%s) - START_TS ))" "$*" >&2; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
jsonl() { echo "$1" >> "$OUT/results.jsonl"; }

# ---------------------------------------------------------------- start / stop servers
start() {  # key cmd...   (background, own process group, PID recorded)
  local key=$1; shift
  { printf '%s: ' "$key"; printf '%q ' "$@"; echo; } >> "$OUT/commands.txt"
  "$@" > "$OUT/logs/$key.log" 2>&1 < /dev/null &
  SRV_PID[$key]=$!
  disown "$!" 2>/dev/null   # no job-status noise when it is stopped
}
stop() {  # keys...: SIGTERM to each group, wait up to STOP_TIMEOUT, then SIGKILL
  local key n alive
  for key in "$@"; do [ -n "${SRV_PID[$key]:-}" ] && kill -TERM -- "-${SRV_PID[$key]}" 2>/dev/null; done
  for n in $(seq 1 $((STOP_TIMEOUT * 10))); do
    alive=0
    for key in "$@"; do [ -n "${SRV_PID[$key]:-}" ] && kill -0 -- "-${SRV_PID[$key]}" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1
  done
  for key in "$@"; do
    if [ -n "${SRV_PID[$key]:-}" ]; then
      kill -0 -- "-${SRV_PID[$key]}" 2>/dev/null && { log "$key did not stop in ${STOP_TIMEOUT}s: SIGKILL"; kill -KILL -- "-${SRV_PID[$key]}" 2>/dev/null; }
      unset "SRV_PID[$key]"
    fi
  done
}
stop_all() { [ ${#SRV_PID[@]} -gt 0 ] && stop "${!SRV_PID[@]}"; rm -rf "$RUN/nginx-tmp"; }
trap 'stop_all' EXIT
trap 'log "interrupted"; exit 130' INT TERM

fill() { sed -e "s#@RUN@#$RUN#g" -e "s#@LOGS@#$OUT/logs#g" -e "s#@UPSTREAM@#$UPSTREAM#g" "$@"; }
start_backend() {
  fill -e "s#@PORT@#$UP_PORT#" -e "s#@H2PORT@#$UP_H2#" "$HERE/conf/nginx-backend.conf" > "$RUN/backend.conf"
  start backend nginx -p "$RUN" -c "$RUN/backend.conf" -e "$OUT/logs/backend.error.log"
}
start_nginx() {  # name port workers h2port
  local h2=""; [ -n "$4" ] && h2="listen 127.0.0.1:$4 http2 backlog=4096;"
  fill -e "s#@NAME@#$1#g" -e "s#@PORT@#$2#g" -e "s#@WORKERS@#$3#g" -e "s#@H2LISTEN@#$h2#" "$HERE/conf/nginx-proxy.conf" > "$RUN/$1.conf"
  start "$1" nginx -p "$RUN" -c "$RUN/$1.conf" -e "$OUT/logs/$1.error.log"
}
start_haproxy() {
  fill -e "s#@PORT@#${T_PORT[haproxy]}#" -e "s#@H2PORT@#${T_H2[haproxy]}#" -e "s#@THREADS@#1#" "$HERE/conf/haproxy.cfg" > "$RUN/haproxy.cfg"
  start haproxy haproxy -db -f "$RUN/haproxy.cfg"
}
gen_config() {  # meshgate-target -> writes $RUN/config-<target>, logs the summary
  local t=$1 dir=$RUN/config-$1 args=()
  case ${MG_CONF[$t]} in
    one) args=() ;;
    authz) args=(--authz) ;;
    jwt) args=(--jwt) ;;
    notel) args=() ;;
    hosts) args=(--hosts "$HOSTS" --virtual-services "$HOSTS_VS" --routes "$HOSTS_ROUTES" --services 100) ;;
    push) args=(--virtual-services "$PUSH_VS" --hosts "$PUSH_VS" --services 100 --endpoints "$PUSH_ENDPOINTS" --push) ;;
  esac
  local summary
  summary=$("$NODE" "$HERE/tools/gen-config.ts" --out "$dir" --listen-port "${T_PORT[$t]}" --bind "$MESHGATE_BIND" \
    --backend "$UPSTREAM" "${args[@]}") || { log "gen-config failed for $t"; return 1; }
  if [ "${MG_CONF[$t]}" = jwt ]; then
    T_AUTH[$t]="Bearer $(sed -E 's/.*"token":"([^"]*)".*/\1/' <<< "$summary")"
    summary=$(sed -E 's/,"token":"[^"]*"//' <<< "$summary")
  fi
  echo "config $t: $summary" >> "$OUT/commands.txt"
  jsonl "{\"scenario\":\"config\",\"target\":\"$t\",\"summary\":$summary}"
}
start_meshgate() {  # target
  local t=$1 b=${MG_BASEP[$1]} conc=()
  [ -n "${MG_CONC[$t]}" ] && [ -z "${MG_NO_CONC:-}" ] && conc=(--concurrency "${MG_CONC[$t]}")
  [ -n "${MG_MERGED:-}" ] && conc+=(--merged-metrics-port $((b + 5)))
  if [ "${MG_CONF[$t]}" = notel ]; then
    printf 'defaultProviders: {}\nenableTracing: false\n' > "$RUN/mesh-$t.yaml"
    conc+=(--mesh-config "$RUN/mesh-$t.yaml")
  fi
  local env=(env MESHGATE_LOG_PRETTY=0)
  if [ $PROFILE = 1 ]; then
    mkdir -p "$OUT/profiles/$t"
    env+=(NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--cpu-prof --cpu-prof-dir=$OUT/profiles/$t")
  fi
  # shellcheck disable=SC2086
  start "$t" "${env[@]}" "$MESHGATE" local --config "$RUN/config-$t" --admin-port $((b + 1)) --status-port $((b + 2)) \
    --metrics-port $((b + 3)) $MG_FLAGS "${conc[@]}"
}

# ---------------------------------------------------------------- probes
tree() { local c; [ -n "$1" ] || return 0; echo "$1"; for c in $(ps -o pid= --ppid "$1"); do tree "$c"; done; }
pids_of() { tree "${SRV_PID[${T_SERVER[$1]}]:-}"; }
# probe TARGET SCENARIO -> prints nothing when the target answers that scenario's request correctly, else why not
probe() {
  local t=$1 sc=$2 port=${T_PORT[$1]} path=/ want=ok extra=() body code
  case $sc in
    16k) path=/16k ;;
    upload) path=/upload; extra=(--data-binary "@$RUN/upload-1m" -H 'Content-Type: application/octet-stream' -H 'Expect:') ;;
    close) extra=(-H 'Connection: close') ;;
    h2) port=${T_H2[$t]:-}; extra=(--http2-prior-knowledge) ;;
  esac
  [ -n "${T_AUTH[$t]:-}" ] && extra+=(-H "Authorization: ${T_AUTH[$t]}")
  [ -n "$port" ] || { echo "no HTTP/2 port"; return; }
  : > "$RUN/probe.out"
  body=$(curl -s --max-time 5 -o "$RUN/probe.out" -w '%{http_code} %{http_version}' -H "Host: ${T_HOST[$t]}" "${extra[@]}" "http://127.0.0.1:$port$path" 2>&1)
  code=${body%% *}
  if [ "$sc" = 16k ]; then
    [ "$code" = 200 ] && [ "$(wc -c < "$RUN/probe.out")" = 16384 ] && return
    echo "GET /16k answered $code with $(wc -c < "$RUN/probe.out") bytes, not 200 with 16384"; return
  fi
  if [ "$code" = 200 ] && [ "$(cat "$RUN/probe.out")" = "$want" ]; then
    [ "$sc" = h2 ] && [ "${body#* }" != 2 ] && { echo "answered over HTTP/${body#* }, not HTTP/2"; return; }
    return
  fi
  if [ "$code" = 000 ]; then
    [ "$sc" = h2 ] && { echo "no answer to an HTTP/2 (prior knowledge) request on :$port"; return; }
    echo "no answer to $path on :$port"; return
  fi
  echo "$path answered $code $(head -c 80 "$RUN/probe.out" | tr -d '\r\n' | tr '"' "'")"
}
wait_ready() {  # target timeout-seconds -> 0 when it answers GET / with ok; records READY_MS
  local t=$1 deadline=$(( $(now_ms) + $2 * 1000 )) t0=${3:-$(now_ms)} s=${T_SERVER[$1]}
  while :; do
    [ -z "$(probe "$t" small)" ] && { READY_MS[$t]=$(( $(now_ms) - t0 )); return 0; }
    if ! kill -0 "${SRV_PID[$s]}" 2>/dev/null; then
      log "$t exited during start-up; log: $OUT/logs/$s.log"; tail -15 "$OUT/logs/$s.log" | sed 's/^/  /' >&2; return 1
    fi
    if [ "$(now_ms)" -gt "$deadline" ]; then
      log "$t (127.0.0.1:${T_PORT[$t]}) does not answer GET / (Host ${T_HOST[$t]}) with 'ok' after $2 s: $(probe "$t" small)"
      log "its log: $OUT/logs/$s.log"; tail -15 "$OUT/logs/$s.log" | sed 's/^/  /' >&2
      [[ $t == meshgate* ]] && [ -n "$MESHGATE_BIND" ] && log "(if meshgate rejects the Gateway's 'bind: $MESHGATE_BIND', run with MESHGATE_BIND= to leave it out)"
      return 1
    fi
    sleep 0.05
  done
}
check_bind() {  # warn when meshgate's listener is not on 127.0.0.1 only
  local l; l=$(ss -ltnH "( sport = :${T_PORT[$1]} )" | awk '{print $4}' | tr '\n' ' ')
  [[ "$l" == *0.0.0.0:* || "$l" == *"[::]:"* || "$l" == *"*:"* ]] && log "warning: $1 listens on $l (the generated Gateway asks for bind: ${MESHGATE_BIND:-none}); it is reachable from other hosts while the benchmark runs"
  return 0
}

# ---------------------------------------------------------------- measurement helpers
cpu_ticks() { local p; for p in "$@"; do sed 's/.*) //' "/proc/$p/stat" 2>/dev/null; done | awk '{s+=$12+$13} END{print s+0}'; }
status_kb() { local f=$1 p; shift; for p in "$@"; do awk -v f="$f:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null; done; }
sum() { awk '{s+=$1} END{print s+0}'; }
maxof() { awk '$1>m{m=$1} END{print m+0}'; }
clear_hwm() { local p; for p in "$@"; do echo 5 > "/proc/$p/clear_refs" 2>/dev/null; done; }
machine() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6, $9}' /proc/stat; }   # busy, idle+iowait, steal (all CPUs)
tcp_opens() { awk '/^Tcp:/{n++; if(n==2) print $6}' /proc/net/snmp; }
pin() { local cpus=$1 p; shift; for p in "$@"; do taskset -a -p -c "$cpus" "$p" >/dev/null 2>&1; done; }
HZ=$(getconf CLK_TCK)

record_memory() {  # target phase -> one "memory" line: RSS now (sum over the tree, largest process)
  local t=$1 pids; pids=$(pids_of "$t")
  local rss max n; rss=$(status_kb VmRSS $pids | sum); max=$(status_kb VmRSS $pids | maxof); n=$(echo $pids | wc -w)
  jsonl "{\"scenario\":\"memory\",\"target\":\"$t\",\"phase\":\"$2\",\"rss_kb\":$rss,\"rss_max_proc_kb\":$max,\"procs\":$n}"
}

# measure SCENARIO TARGET ROUND  -> appends one JSON line to results.jsonl (round 0 = warm-up, not recorded)
measure() {
  local sc=$1 t=$2 round=$3 path=/ conns=$CONNS dur proto=h1 port=${T_PORT[$2]} pinned=0 wenv=() hdr=()
  case $sc in
    small|warmup) dur=$DUR_SMALL ;; 16k) dur=$DUR_16K; path=/16k ;; c1) dur=$DUR_C1; conns=1 ;;
    upload) dur=$DUR_UPLOAD; path=/upload; conns=$CONNS_UPLOAD; wenv=(env WRK_BODY_BYTES=1048576) ;;
    close) dur=$DUR_CLOSE; hdr=(-H 'Connection: close') ;;
    hosts) dur=$DUR_HOSTS ;; pinned) dur=$DUR_PINNED; pinned=1 ;;
    h2) dur=$DUR_H2; proto=h2; port=${T_H2[$t]} ;;
  esac
  [ "$round" = 0 ] && dur=$WARMUP
  [ -n "${T_AUTH[$t]:-}" ] && hdr+=(-H "Authorization: ${T_AUTH[$t]}")
  local pids bpids; pids=$(pids_of "$t"); bpids=$(pids_of direct)
  [ $pinned = 1 ] && pin 1 $pids
  clear_hwm $pids
  local raw="$OUT/raw/$sc-$t-r$round.txt" cmd
  if [ $proto = h2 ]; then
    cmd=(h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D "$dur" --log-file="$RUN/h2.log" -H ":authority: ${T_HOST[$t]}" "http://127.0.0.1:$port$path")
  else
    cmd=("${wenv[@]}" wrk -t1 -c"$conns" -d"${dur}s" --timeout 5s --latency -s "$HERE/tools/wrk-report.lua" -H "Host: ${T_HOST[$t]}" "${hdr[@]}" "http://127.0.0.1:$port$path")
  fi
  [ $pinned = 1 ] && cmd=(taskset -c 0 "${cmd[@]}")
  [ "$round" = 1 ] && { printf '%s %s: ' "$sc" "$t"; printf '%q ' "${cmd[@]}"; echo; } >> "$OUT/commands.txt"
  local c0 b0 m0 o0 c1 b1 m1 o1
  c0=$(cpu_ticks $pids); b0=$(cpu_ticks $bpids); m0=$(machine); o0=$(tcp_opens)
  timeout -k 2 $((dur + 20)) "${cmd[@]}" > "$raw" 2>&1
  c1=$(cpu_ticks $pids); b1=$(cpu_ticks $bpids); m1=$(machine); o1=$(tcp_opens)
  local hwm hwm_max nprocs; hwm=$(status_kb VmHWM $pids | sum); hwm_max=$(status_kb VmHWM $pids | maxof); nprocs=$(echo $pids | wc -w)
  [ $pinned = 1 ] && pin 0,1 $pids
  [ "$round" = 0 ] && return 0

  local res
  if [ $proto = h2 ]; then
    res=$(awk -F'\t' '$2 >= 200 && $2 < 400 {print $3}' "$RUN/h2.log" 2>/dev/null | sort -n | awk -v raw="$raw" '
      function pct(p,  i) { i = int(n * p); if (i < 1) i = 1; return a[i] }
      {a[NR] = $1}
      END {
        n = NR; if (n == 0) { n = 1; a[1] = 0 }
        while ((getline l < raw) > 0) {
          if (l ~ /^finished in/) { split(l, f, /[ ,]+/); secs = f[3]
            if (secs ~ /ms$/) { sub(/ms$/, "", secs); secs /= 1000 } else sub(/s$/, "", secs) }
          if (l ~ /^requests:/) { split(l, f, /[ ,]+/); ndone = f[6]; failed = f[10]; errored = f[12] }
          if (l ~ /^status codes:/) { split(l, f, /[ ,]+/); non2xx = f[5] + f[7] + f[9] }
        }
        if (secs == 0) exit
        printf "{\"requests\":%d,\"duration_us\":%d,\"err\":%d,\"non2xx\":%d,\"lat_p50_us\":%d,\"lat_p90_us\":%d,\"lat_p99_us\":%d,\"lat_p999_us\":%d,\"lat_max_us\":%d}",
          ndone, secs * 1e6, failed + errored, non2xx, pct(0.5), pct(0.9), pct(0.99), pct(0.999), a[n]
      }')
    rm -f "$RUN/h2.log"
  else
    res=$(sed -n 's/^WRKJSON //p' "$raw")
  fi
  [ -n "$res" ] || { log "no result from $sc $t round $round: see $raw"; tail -3 "$raw" | sed 's/^/  /' >&2; res='{"requests":0,"duration_us":1,"err":1}'; }
  local mb0 mi0 ms0 mb1 mi1 ms1; read -r mb0 mi0 ms0 <<< "$m0"; read -r mb1 mi1 ms1 <<< "$m1"
  local inflight=$conns; [ $proto = h2 ] && inflight=$((H2_CONNS * H2_STREAMS))
  jsonl "{\"scenario\":\"$sc\",\"target\":\"$t\",\"round\":$round,\"proto\":\"$proto\",\"path\":\"$path\",\"conns\":$inflight,\"dur_s\":$dur,\"multi\":${T_MULTI[$t]:-0},\"procs\":$nprocs,\"server_cpu_ticks\":$((c1 - c0)),\"backend_cpu_ticks\":$((b1 - b0)),\"machine_busy_ticks\":$((mb1 - mb0)),\"machine_idle_ticks\":$((mi1 - mi0)),\"steal_ticks\":$((ms1 - ms0)),\"hz\":$HZ,\"tcp_opens\":$((o1 - o0)),\"hwm_kb\":$hwm,\"hwm_max_proc_kb\":$hwm_max,\"load\":$res}"
}

targets_for() {  # scenario -> the targets it measures, in interleaving order
  local t
  case $1 in
    h2) for t in "${ORDER[@]}"; do [ -n "${T_H2[$t]:-}" ] && echo "$t"; done ;;
    pinned) for t in "${ORDER[@]}"; do [ -z "${T_MULTI[$t]:-}" ] && echo "$t"; done ;;
    hosts) echo nginx; [ ${#MESHGATES[@]} -gt 0 ] && echo "${MESHGATES[0]}" meshgate-5k | tr ' ' '\n' ;;
    push) [ ${#MESHGATES[@]} -gt 0 ] && echo meshgate-push ;;
    *) printf '%s\n' "${ORDER[@]}" ;;
  esac
}

# Starts a meshgate with a large generated config for one scenario; records config, start-up time, idle memory.
start_big() {  # target
  local t=$1 t0
  log "$t: generating its configuration"
  gen_config "$t" || return 1
  t0=$(now_ms); start_meshgate "$t"
  wait_ready "$t" "$BIG_READY_TIMEOUT" "$t0" || return 1
  check_bind "$t"
  jsonl "{\"scenario\":\"startup\",\"target\":\"$t\",\"ready_ms\":${READY_MS[$t]}}"
  log "$t answers after ${READY_MS[$t]} ms"
  sleep 1; record_memory "$t" idle
}

run_scenario() {
  local sc=$1 list=() t why r
  case $sc in
    hosts|push)
      if [ ${#MESHGATES[@]} -eq 0 ]; then
        log "scenario $sc measures meshgate only, and meshgate is not among --targets: skipped"
        jsonl "{\"scenario\":\"$sc\",\"target\":\"meshgate\",\"skipped\":\"meshgate is not among --targets\"}"; return 0
      fi ;;
  esac
  if [ "$sc" = push ]; then
    if ! start_big meshgate-push; then
      jsonl "{\"scenario\":\"push\",\"target\":\"meshgate-push\",\"skipped\":\"did not start with $PUSH_VS VirtualServices / $PUSH_ENDPOINTS endpoints\"}"
      stop meshgate-push; return 0
    fi
    log "scenario push: $PUSHES route pushes and $PUSHES endpoint flips at $PUSH_VS VirtualServices / $PUSH_ENDPOINTS endpoints"
    echo "push meshgate-push: $NODE $HERE/tools/push-latency.ts --dir $RUN/config-meshgate-push --port ${T_PORT[meshgate-push]} --pushes $PUSHES --timeout-ms $PUSH_TIMEOUT_MS" >> "$OUT/commands.txt"
    timeout -k 2 $(( PUSHES * 3 * (PUSH_TIMEOUT_MS / 1000 + 1) + 30 )) "$NODE" "$HERE/tools/push-latency.ts" --dir "$RUN/config-meshgate-push" \
      --port "${T_PORT[meshgate-push]}" --pushes "$PUSHES" --timeout-ms "$PUSH_TIMEOUT_MS" --backend "$UPSTREAM" --target meshgate-push \
      >> "$OUT/results.jsonl" 2> "$OUT/logs/push-latency.log" || { log "push-latency failed: $(tail -3 "$OUT/logs/push-latency.log")"; \
      jsonl "{\"scenario\":\"push\",\"target\":\"meshgate-push\",\"skipped\":\"push-latency failed: see logs/push-latency.log\"}"; }
    record_memory meshgate-push after-pushes
    stop meshgate-push
    return 0
  fi
  if [ "$sc" = hosts ]; then
    if ! start_big meshgate-5k; then
      jsonl "{\"scenario\":\"hosts\",\"target\":\"meshgate-5k\",\"skipped\":\"did not start with $HOSTS hosts / $HOSTS_VS VirtualServices\"}"
      stop meshgate-5k
    else
      measure warmup meshgate-5k 0
    fi
  fi
  for t in $(targets_for "$sc"); do
    [ -n "${SRV_PID[${T_SERVER[$t]}]:-}" ] || continue
    why=$(probe "$t" "$sc")
    if [ -n "$why" ]; then
      log "scenario $sc: $t not measured: $why"
      jsonl "{\"scenario\":\"$sc\",\"target\":\"$t\",\"unsupported\":true,\"skipped\":\"$(echo "$why" | tr -d '"\\')\"}"
    else
      list+=("$t")
    fi
  done
  if [ ${#list[@]} -eq 0 ]; then log "scenario $sc: nothing to measure"; return 0; fi
  log "scenario $sc: $ROUNDS round(s) of [ ${list[*]} ]"
  [ "$sc" = h2 ] && for t in "${list[@]}"; do measure h2 "$t" 0; done
  [ "$sc" = pinned ] && pin 0 $(pids_of direct)   # wrk and the backend share CPU 0; the target gets CPU 1
  for r in $(seq 1 "$ROUNDS"); do
    for t in "${list[@]}"; do measure "$sc" "$t" "$r"; done
  done
  [ "$sc" = pinned ] && pin 0,1 $(pids_of direct)
  if [ "$sc" = hosts ] && [ -n "${SRV_PID[meshgate-5k]:-}" ]; then record_memory meshgate-5k after-load; stop meshgate-5k; fi
  return 0
}

# ---------------------------------------------------------------- the machine and the versions
{
  echo "date_utc: $(date -u +%FT%TZ)"
  echo "host: $(uname -srm); $(nproc) CPUs; $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1); $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  echo "virtualization: $(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor: *//p;s/^Virtualization type: *//p' | tr '\n' ' ')"
  echo "os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
  echo "load before start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "node (harness): $("$NODE" -v)"
  echo "meshgate: $( [ ${#MESHGATES[@]} -gt 0 ] && timeout 30 "$MESHGATE" version 2>&1 | head -1) $(git -C "$ROOT" log -1 --format='%h %cI' 2>/dev/null) $(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo '(work tree modified)')"
  echo "nginx: $(nginx -v 2>&1 | sed 's/.*: //')"
  wants haproxy && echo "haproxy: $(haproxy -v | head -1)"
  echo "wrk: $(wrk -v 2>&1 | head -1)"
  command -v h2load >/dev/null && echo "h2load: $(h2load --version | head -1)"
  echo "settings: rounds=$ROUNDS conns=$CONNS upload_conns=$CONNS_UPLOAD h2=${H2_CONNS}x${H2_STREAMS} dur small=$DUR_SMALL 16k=$DUR_16K upload=$DUR_UPLOAD close=$DUR_CLOSE c1=$DUR_C1 h2=$DUR_H2 hosts=$DUR_HOSTS pinned=$DUR_PINNED warmup=$WARMUP pushes=$PUSHES"
  echo "scale: hosts=$HOSTS hosts_vs=$HOSTS_VS hosts_routes=$HOSTS_ROUTES push_vs=$PUSH_VS push_endpoints=$PUSH_ENDPOINTS"
  echo "meshgate concurrency: ${CONCURRENCY:-default}${MG_NO_CONC:+ (flag not supported by this meshgate: ignored)}; bind: ${MESHGATE_BIND:-none}; profile: $PROFILE"
  echo "scenarios: $SCENARIOS"
} > "$OUT/machine.txt"

# ---------------------------------------------------------------- run
log "results -> $OUT"
load1=$(cut -d' ' -f1 /proc/loadavg)
awk -v l="$load1" -v n="$(nproc)" 'BEGIN{exit !(l > 0.5 * n)}' &&
  log "warning: the machine is busy before the start (load $load1 on $(nproc) CPUs): the ratios will be noisy; CPU µs/req is steadier"
start_backend
wait_ready direct "$READY_TIMEOUT" || exit 1
wants nginx-2w && start_nginx nginx-2w 9111 2 ""
start_nginx nginx 9101 1 9201
wants haproxy && start_haproxy
for t in "${MESHGATES[@]}"; do gen_config "$t" || exit 1; done
MG_T0=$(now_ms)
for t in "${MESHGATES[@]}"; do start_meshgate "$t"; done
for t in "${ORDER[@]}"; do
  [ "$t" = direct ] && continue
  if [[ $t == meshgate* ]]; then to=$BIG_READY_TIMEOUT; t0=$MG_T0; else to=$READY_TIMEOUT; t0=$(now_ms); fi
  wait_ready "$t" "$to" "$t0" || { log "$t did not start: see above"; exit 1; }
done
for t in "${MESHGATES[@]}"; do
  check_bind "$t"
  jsonl "{\"scenario\":\"startup\",\"target\":\"$t\",\"ready_ms\":${READY_MS[$t]}}"
done
sleep 1
for t in "${ORDER[@]}"; do record_memory "$t" idle; done
log "all targets answer; warming up ${WARMUP}s each"
for t in "${ORDER[@]}"; do measure warmup "$t" 0; done

for sc in $SCENARIOS; do run_scenario "$sc"; done

for t in "${ORDER[@]}"; do record_memory "$t" end; done
log "stopping servers"
stop_all
"$NODE" "$HERE/tools/summarize.ts" "$OUT" > "$OUT/table.md" || { log "summarize failed"; exit 1; }
cat "$OUT/table.md"
log "done in $(( $(date +%s) - START_TS ))s; results: $OUT"
