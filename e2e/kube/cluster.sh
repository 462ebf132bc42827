#!/usr/bin/env bash
# A local Kubernetes control plane for the e2e suite: etcd and kube-apiserver on 127.0.0.1,
# with generated certificates, RBAC authorization and an admin kubeconfig; optionally a
# kube-controller-manager running a few controllers. No kubelet, no scheduler: Pods stay
# Pending unless a test patches their status.
#
# Usage: bash e2e/kube/cluster.sh COMMAND DIR
#   start DIR              build (or reuse) the binaries, start etcd + kube-apiserver (and
#                          kube-controller-manager if asked), wait for /readyz; writes
#                          DIR/kubeconfig and DIR/env; refuses if DIR is running
#   stop DIR               stop every process this script started for DIR (exactly those PIDs)
#   env DIR                print DIR/env (export lines)
#   status DIR             print which of DIR's processes run; exit 0 only if all that should do
#   stop-apiserver DIR     stop kube-apiserver alone (etcd keeps the data)
#   start-apiserver DIR    start kube-apiserver again on the same port, with the same certificates
#   restart-apiserver DIR  stop-apiserver, then start-apiserver
#   compact-etcd DIR       write a marker key to etcd and compact its history up to it: every
#                          resourceVersion handed out before is then too old to watch from (410)
#   sa-kubeconfig DIR NAMESPACE SERVICEACCOUNT
#                          print a kubeconfig that authenticates as that ServiceAccount (a token
#                          from the TokenRequest API), to check RBAC rules as the workload sees them
#
# Environment (read by start; start-apiserver reuses what start saved unless set again):
#   APISERVER_PORT, ETCD_PORT, ETCD_PEER_PORT   fixed ports (default: free ports, picked at start)
#   SERVICE_CLUSTER_IP_RANGE                    default 10.96.0.0/16 (addresses are only data here)
#   APISERVER_EXTRA_ARGS                        more kube-apiserver flags, e.g. "--min-request-timeout=10"
#   CLUSTER_START_TIMEOUT                       seconds to wait for readiness (default 120)
#   CLUSTER_OWNER_PID                           a watchdog stops the cluster when this PID exits
#                                               (pass the test runner's PID: a crashed or killed
#                                               test run then leaves no process behind)
#   CLUSTER_CONTROLLER_MANAGER=1                also run kube-controller-manager with the controllers
#                                               in CONTROLLER_MANAGER_CONTROLLERS (default
#                                               endpointslice,serviceaccount,namespace,garbagecollector):
#                                               EndpointSlices follow Pods (which then need a Node
#                                               object and spec.nodeName), namespaces get a `default`
#                                               ServiceAccount and are really deleted
#   KUBE_APISERVER_BIN, ETCD_BIN,               use these binaries instead of e2e/kube/build.sh's
#   KUBE_CONTROLLER_MANAGER_BIN
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/cluster.sh"

log() { printf '[e2e/kube/cluster] %s\n' "$*" >&2; }
die() { printf '[e2e/kube/cluster] error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$self" >&2; exit 2; }

[[ $# -ge 2 ]] || usage
cmd="$1"
mkdir -p "$2"
dir="$(cd "$2" && pwd)"

# ---- processes -------------------------------------------------------------------------

# The PID in DIR/NAME.pid, if that process is alive and is the one started for DIR (its command
# line names DIR: a PID reused by an unrelated process is never signalled).
pid_of() {
  local f="$dir/$1.pid" pid
  [[ -s "$f" ]] || return 1
  pid="$(<"$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" |
    awk -v d="$dir" 'index($0, d "/") || $0 == d { found = 1 } END { exit !found }' || return 1
  printf '%s\n' "$pid"
}

# Running: exists and is not a zombie (an exited child of ours that is not reaped yet).
alive() { [[ -e "/proc/$1" ]] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# stop_proc NAME: SIGTERM, wait up to 20 s for a graceful exit, then SIGKILL.
stop_proc() {
  local name="$1" pid i
  # The watchdog runs `cluster.sh stop` as itself (exec): it must not signal itself.
  if pid="$(pid_of "$name")" && [[ "$pid" != "$$" ]]; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      log "$name (pid $pid) did not exit after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    # Reap it if it is our own child (a failed `start`); otherwise give its parent (init, once
    # the `start` that spawned it has exited) a moment to, so that a caller's kill(pid, 0) right
    # after `stop` already finds nothing.
    wait "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do [[ -e "/proc/$pid" ]] || break; sleep 0.1; done
  fi
  rm -f "$dir/$name.pid"
}

# spawn NAME BIN ARGS...: start a daemon detached from our stdio (a caller reading our
# output through a pipe must not wait for the daemon), logging to DIR/NAME.log.
spawn() {
  local name="$1"; shift
  printf '\n==== %s: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$dir/$name.log"
  # etcd reads every ETCD_* variable as a flag: keep ours (ETCD_BIN, ETCD_PORT, the ETCD_URL
  # of a sourced env file...) away from it.
  local unset=() v
  for v in $(compgen -e | grep '^ETCD_' || true); do unset+=(-u "$v"); done
  nohup env "${unset[@]}" "$@" </dev/null >>"$dir/$name.log" 2>&1 &
  printf '%s\n' "$!" >"$dir/$name.pid"
}

# ---- ports -----------------------------------------------------------------------------

port_in_use() { # a TCP listener on that port, IPv4 or IPv6
  local hex
  hex="$(printf '%04X' "$1")"
  awk -v h="$hex" 'FNR > 1 { split($2, a, ":"); if (a[length(a)] == h && $4 == "0A") found = 1 }
    END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
free_port() { # below Linux's ephemeral range, so an outgoing connection does not take it meanwhile
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000))
    port_in_use "$p" || [[ " ${taken_ports:-} " == *" $p "* ]] || { taken_ports+=" $p"; echo "$p"; return; }
  done
  die "no free TCP port found in 20000-31999"
}

# ---- state saved in DIR/config ------------------------------------------------------------

load_config() {
  [[ -f "$dir/config" ]] || die "$dir was never started (no $dir/config): run \`cluster.sh start $dir\` first"
  controller_manager=0 controller_manager_controllers="" kube_controller_manager_bin=""
  # shellcheck source=/dev/null
  source "$dir/config"
}

save_config() {
  {
    printf 'kube_apiserver_bin=%q\netcd_bin=%q\n' "$kube_apiserver_bin" "$etcd_bin"
    printf 'kube_controller_manager_bin=%q\ncontroller_manager=%q\ncontroller_manager_controllers=%q\n' \
      "$kube_controller_manager_bin" "$controller_manager" "$controller_manager_controllers"
    printf 'apiserver_port=%q\netcd_port=%q\netcd_peer_port=%q\n' "$apiserver_port" "$etcd_port" "$etcd_peer_port"
    printf 'service_cidr=%q\napiserver_extra_args=%q\n' "$service_cidr" "$apiserver_extra_args"
    printf 'kube_version=%q\netcd_version=%q\n' "$kube_version" "$etcd_version"
  } >"$dir/config"
}

write_env() {
  local apiserver_pid etcd_pid cm_pid
  apiserver_pid="$(pid_of apiserver || true)"
  etcd_pid="$(pid_of etcd || true)"
  cm_pid="$(pid_of controller-manager || true)"
  {
    printf 'export CLUSTER_DIR=%q\n' "$dir"
    printf 'export KUBECONFIG=%q\n' "$dir/kubeconfig"
    printf 'export APISERVER_URL=%q\n' "https://127.0.0.1:$apiserver_port"
    printf 'export APISERVER_PORT=%q\n' "$apiserver_port"
    printf 'export APISERVER_PID=%q\n' "$apiserver_pid"
    printf 'export APISERVER_LOG=%q\n' "$dir/apiserver.log"
    printf 'export ETCD_URL=%q\n' "http://127.0.0.1:$etcd_port"
    printf 'export ETCD_PID=%q\n' "$etcd_pid"
    printf 'export ETCD_LOG=%q\n' "$dir/etcd.log"
    printf 'export CONTROLLER_MANAGER_PID=%q\n' "$cm_pid"
    printf 'export CONTROLLER_MANAGER_LOG=%q\n' "$([[ "$controller_manager" == 1 ]] && echo "$dir/controller-manager.log")"
    printf 'export KUBE_CA_FILE=%q\n' "$dir/pki/ca.crt"
    printf 'export KUBE_ADMIN_CERT_FILE=%q\n' "$dir/pki/admin.crt"
    printf 'export KUBE_ADMIN_KEY_FILE=%q\n' "$dir/pki/admin.key"
    printf 'export SERVICE_CLUSTER_IP_RANGE=%q\n' "$service_cidr"
    printf 'export KUBE_VERSION=%q\n' "$kube_version"
    printf 'export ETCD_VERSION=%q\n' "$etcd_version"
  } >"$dir/env.tmp"
  mv -f "$dir/env.tmp" "$dir/env"
}

# ---- certificates --------------------------------------------------------------------------

# The first address of the service range: the ClusterIP of the `kubernetes` Service.
first_service_ip() {
  local base="${1%/*}" a b c d
  IFS=. read -r a b c d <<<"$base"
  echo "$a.$b.$c.$((d + 1))"
}

make_pki() {
  local pki="$dir/pki"
  [[ -f "$pki/admin.crt" ]] && return 0 # kept across stop/start of the same DIR
  command -v openssl >/dev/null 2>&1 || die "openssl is needed to generate the cluster's certificates"
  log "generating certificates in $pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    umask 077
    local ecparam=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ecparam[@]}" -keyout ca.key -out ca.crt -days 3650 -subj "/CN=meshgate-e2e-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

    cat >apiserver.ext <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$(first_service_ip "$service_cidr"),DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
    openssl req "${ecparam[@]}" -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null

    # The admin: group system:masters, which RBAC's bootstrap policy binds to cluster-admin.
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >client.ext
    openssl req "${ecparam[@]}" -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=meshgate-e2e-admin" 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile client.ext -out admin.crt 2>/dev/null

    # ServiceAccount token signing key pair.
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr ./*.ext ca.srl
  ) || die "generating certificates with openssl failed"
}

write_kubeconfig() { # write_kubeconfig FILE USER-STANZA
  local b64ca
  b64ca="$(base64 -w0 <"$dir/pki/ca.crt")"
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: meshgate-e2e
  cluster:
    server: https://127.0.0.1:$apiserver_port
    certificate-authority-data: $b64ca
users:
- name: $1
  user:
$2
contexts:
- name: meshgate-e2e
  context:
    cluster: meshgate-e2e
    user: $1
current-context: meshgate-e2e
EOF
}

# ---- readiness -----------------------------------------------------------------------------

admin_curl() {
  curl -sS --max-time 5 --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" "$@"
}

# wait_for NAME DEADLINE CHECK...: poll CHECK until it succeeds; fail at DEADLINE (in $SECONDS)
# or as soon as NAME's process has exited.
wait_for() {
  local name="$1" deadline="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    if ! pid_of "$name" >/dev/null; then
      tail -n 30 "$dir/$name.log" >&2 || true
      die "$name exited during start-up (log: $dir/$name.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$dir/$name.log" >&2 || true
      die "$name was not ready within ${CLUSTER_START_TIMEOUT:-120} s (log: $dir/$name.log)"
    fi
    sleep 0.3
  done
}

etcd_healthy() { curl -sS --max-time 2 "http://127.0.0.1:$etcd_port/health" | grep -q '"health":"true"'; }
apiserver_ready() {
  [[ "$(admin_curl "https://127.0.0.1:$apiserver_port/readyz")" == ok ]] &&
    # /readyz can answer before the bootstrap controller has created the system namespaces.
    admin_curl -f "https://127.0.0.1:$apiserver_port/api/v1/namespaces/default" &&
    admin_curl -f "https://127.0.0.1:$apiserver_port/api/v1/namespaces/kube-system"
}

# ---- the two daemons -------------------------------------------------------------------------

start_etcd() {
  mkdir -p "$dir/etcd-data"
  chmod 700 "$dir/etcd-data"
  log "starting etcd $etcd_version on 127.0.0.1:$etcd_port"
  # Plain HTTP on loopback; --unsafe-no-fsync because this data only lives for a test run.
  spawn etcd "$etcd_bin" \
    --name=meshgate-e2e \
    --data-dir="$dir/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" \
    --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster="meshgate-e2e=http://127.0.0.1:$etcd_peer_port" \
    --unsafe-no-fsync \
    --log-level=warn
  wait_for etcd $((SECONDS + ${CLUSTER_START_TIMEOUT:-120})) etcd_healthy
}

start_apiserver() {
  local extra=()
  read -r -a extra <<<"${APISERVER_EXTRA_ARGS-$apiserver_extra_args}"
  log "starting kube-apiserver $kube_version on https://127.0.0.1:$apiserver_port"
  # --disable-admission-plugins=ServiceAccount: that plugin rejects a Pod whose namespace has
  #   no `default` ServiceAccount, which kube-controller-manager (absent here) creates.
  # --endpoint-reconciler-type=none: the `kubernetes` Service gets no endpoints, since a
  #   loopback address is not a valid endpoint address and nothing here would connect to it.
  spawn apiserver "$kube_apiserver_bin" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$apiserver_port" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --tls-cert-file="$dir/pki/apiserver.crt" \
    --tls-private-key-file="$dir/pki/apiserver.key" \
    --client-ca-file="$dir/pki/ca.crt" \
    --authorization-mode=RBAC \
    --anonymous-auth=false \
    --service-cluster-ip-range="$service_cidr" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$dir/pki/sa.pub" \
    --service-account-signing-key-file="$dir/pki/sa.key" \
    --disable-admission-plugins=ServiceAccount \
    --endpoint-reconciler-type=none \
    --allow-privileged=true \
    --profiling=false \
    --cert-dir="$dir/pki/generated" \
    "${extra[@]}"
  wait_for apiserver $((SECONDS + ${CLUSTER_START_TIMEOUT:-120})) apiserver_ready
  log "kube-apiserver is ready (pid $(pid_of apiserver))"
}

start_controller_manager() {
  log "starting kube-controller-manager $kube_version (controllers: $controller_manager_controllers)"
  # --secure-port=0: it serves nothing; it only talks to the API server.
  spawn controller-manager "$kube_controller_manager_bin" \
    --kubeconfig="$dir/kubeconfig" \
    --leader-elect=false \
    --controllers="$controller_manager_controllers" \
    --bind-address=127.0.0.1 \
    --secure-port=0
  if [[ ",$controller_manager_controllers," == *,serviceaccount,* ]]; then
    # Up and syncing once the ServiceAccount controller has filled `default`.
    wait_for controller-manager $((SECONDS + ${CLUSTER_START_TIMEOUT:-120})) \
      admin_curl -f "https://127.0.0.1:$apiserver_port/api/v1/namespaces/default/serviceaccounts/default"
  fi
}

# ---- watchdog ----------------------------------------------------------------------------------

start_watchdog() {
  local owner="$1"
  if [[ ! "$owner" =~ ^[0-9]+$ ]] || ! kill -0 "$owner" 2>/dev/null; then
    die "CLUSTER_OWNER_PID=$owner is not a running process"
  fi
  # The watchdog's command line names DIR, so pid_of recognises it.
  # shellcheck disable=SC2016 # $1.. are the inner script's arguments
  spawn watchdog bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done
    echo "owner pid $1 exited: stopping the cluster in $2"; exec bash "$3" stop "$2"' \
    cluster-watchdog "$owner" "$dir" "$self"
}

# ---- commands ----------------------------------------------------------------------------------

running_any() {
  pid_of etcd >/dev/null || pid_of apiserver >/dev/null || pid_of controller-manager >/dev/null ||
    pid_of watchdog >/dev/null
}

cmd_start() {
  if running_any; then
    die "a cluster is already running in $dir (pids: $(cat "$dir"/*.pid 2>/dev/null | tr '\n' ' ')); run \`cluster.sh stop $dir\` first"
  fi
  command -v curl >/dev/null 2>&1 || die "curl is needed to check the cluster's readiness"
  rm -f "$dir"/*.pid "$dir/env"

  controller_manager="${CLUSTER_CONTROLLER_MANAGER:-0}"
  controller_manager_controllers="${CONTROLLER_MANAGER_CONTROLLERS:-endpointslice,serviceaccount,namespace,garbagecollector}"
  if [[ -n "${KUBE_APISERVER_BIN:-}" || -n "${ETCD_BIN:-}" ]]; then
    [[ -x "${KUBE_APISERVER_BIN:-}" && -x "${ETCD_BIN:-}" ]] || die "set both KUBE_APISERVER_BIN and ETCD_BIN to executables"
    kube_apiserver_bin="$KUBE_APISERVER_BIN" etcd_bin="$ETCD_BIN"
    kube_controller_manager_bin="${KUBE_CONTROLLER_MANAGER_BIN:-$(dirname "$KUBE_APISERVER_BIN")/kube-controller-manager}"
  else
    local bin
    bin="$(bash "$here/build.sh")" || die "building kube-apiserver and etcd failed"
    kube_apiserver_bin="$bin/kube-apiserver" etcd_bin="$bin/etcd"
    kube_controller_manager_bin="${KUBE_CONTROLLER_MANAGER_BIN:-$bin/kube-controller-manager}"
  fi
  if [[ "$controller_manager" == 1 && ! -x "$kube_controller_manager_bin" ]]; then
    die "CLUSTER_CONTROLLER_MANAGER=1 but $kube_controller_manager_bin is not an executable"
  fi
  kube_version="$("$kube_apiserver_bin" --version 2>/dev/null | awk '{print $2}')"
  etcd_version="$("$etcd_bin" --version 2>/dev/null | awk '/etcd Version/ {print "v" $3}')"

  # Reuse the ports of an earlier start of this DIR (kubeconfigs written then stay valid).
  local old_apiserver_port="" old_etcd_port="" old_etcd_peer_port=""
  if [[ -f "$dir/config" ]]; then
    # shellcheck disable=SC1091
    old_apiserver_port="$(source "$dir/config"; echo "$apiserver_port")"
    # shellcheck disable=SC1091
    old_etcd_port="$(source "$dir/config"; echo "$etcd_port")"
    # shellcheck disable=SC1091
    old_etcd_peer_port="$(source "$dir/config"; echo "$etcd_peer_port")"
  fi
  taken_ports=""
  etcd_port="${ETCD_PORT:-${old_etcd_port:-$(free_port)}}"; taken_ports+=" $etcd_port"
  etcd_peer_port="${ETCD_PEER_PORT:-${old_etcd_peer_port:-$(free_port)}}"; taken_ports+=" $etcd_peer_port"
  apiserver_port="${APISERVER_PORT:-${old_apiserver_port:-$(free_port)}}"
  for p in "$etcd_port" "$etcd_peer_port" "$apiserver_port"; do
    ! port_in_use "$p" || die "port $p on this machine is already in use (set APISERVER_PORT/ETCD_PORT/ETCD_PEER_PORT, or use a new DIR)"
  done
  service_cidr="${SERVICE_CLUSTER_IP_RANGE:-10.96.0.0/16}"
  apiserver_extra_args="${APISERVER_EXTRA_ARGS:-}"
  save_config

  make_pki
  write_kubeconfig meshgate-e2e-admin "    client-certificate-data: $(base64 -w0 <"$dir/pki/admin.crt")
    client-key-data: $(base64 -w0 <"$dir/pki/admin.key")" >"$dir/kubeconfig"
  chmod 600 "$dir/kubeconfig"

  # Whatever fails from here on, leave no process behind.
  trap 'rc=$?; if ((rc != 0)); then log "start failed: stopping what was started"; cmd_stop; fi' EXIT
  if [[ -n "${CLUSTER_OWNER_PID:-}" ]]; then start_watchdog "$CLUSTER_OWNER_PID"; fi
  start_etcd
  start_apiserver
  if [[ "$controller_manager" == 1 ]]; then start_controller_manager; fi
  write_env
  trap - EXIT
  log "cluster ready in $dir: KUBECONFIG=$dir/kubeconfig, APISERVER_URL=https://127.0.0.1:$apiserver_port"
}

cmd_stop() {
  # Order: the watchdog first (so it does not race us), then the API server's clients, the
  # API server, its store.
  stop_proc watchdog
  stop_proc controller-manager
  stop_proc apiserver
  stop_proc etcd
  [[ -f "$dir/config" ]] && { load_config; write_env; }
  return 0
}

cmd_stop_apiserver() {
  load_config
  stop_proc apiserver
  write_env
}

cmd_start_apiserver() {
  load_config
  pid_of etcd >/dev/null || die "etcd is not running in $dir: use \`cluster.sh start $dir\`"
  if pid_of apiserver >/dev/null; then die "kube-apiserver is already running in $dir (pid $(pid_of apiserver))"; fi
  # The port was just released by our own apiserver; Go listens with SO_REUSEADDR.
  ! port_in_use "$apiserver_port" || die "port $apiserver_port is taken by another process"
  trap 'rc=$?; if ((rc != 0)); then stop_proc apiserver; write_env; fi' EXIT
  start_apiserver
  write_env
  trap - EXIT
}

cmd_compact_etcd() {
  local rev
  load_config
  pid_of etcd >/dev/null || die "etcd is not running in $dir"
  # etcd's JSON gateway (/v3/...): keys and values are base64. The put moves the revision past every
  # resourceVersion the API server handed out; the compaction then drops the history before it.
  rev="$(curl -sS -f --max-time 5 -X POST "http://127.0.0.1:$etcd_port/v3/kv/put" \
    --data "{\"key\":\"$(printf '/meshgate-e2e/compaction-marker' | base64 -w0)\",\"value\":\"$(date +%s | base64 -w0)\"}" |
    sed -n 's/.*"revision":"\([0-9]*\)".*/\1/p')" || die "writing the compaction marker to etcd failed"
  [[ -n "$rev" ]] || die "etcd's put answer carried no revision"
  curl -sS -f --max-time 30 -X POST "http://127.0.0.1:$etcd_port/v3/kv/compaction" \
    --data "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null || die "compacting etcd at revision $rev failed"
  log "etcd compacted at revision $rev"
}

cmd_status() {
  local name pid rc=0
  load_config
  for name in etcd apiserver controller-manager watchdog; do
    if pid="$(pid_of "$name")"; then echo "$name: running (pid $pid)"
    elif [[ "$name" == controller-manager && "$controller_manager" != 1 ]]; then echo "$name: not enabled"
    else echo "$name: not running"; [[ "$name" == watchdog ]] || rc=1; fi
  done
  return "$rc"
}

cmd_sa_kubeconfig() {
  local ns="$1" sa="$2" token
  load_config
  token="$(admin_curl -f -X POST -H 'Content-Type: application/json' \
    --data '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":86400}}' \
    "https://127.0.0.1:$apiserver_port/api/v1/namespaces/$ns/serviceaccounts/$sa/token" |
    sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')" || die "TokenRequest for $ns/$sa failed (does the ServiceAccount exist?)"
  [[ -n "$token" ]] || die "TokenRequest for $ns/$sa returned no token"
  write_kubeconfig "system:serviceaccount:$ns:$sa" "    token: $token"
}

case "$cmd" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  env) [[ -f "$dir/env" ]] || die "no $dir/env: the cluster in $dir was never started"; cat "$dir/env" ;;
  status) cmd_status ;;
  stop-apiserver) cmd_stop_apiserver ;;
  start-apiserver) cmd_start_apiserver ;;
  restart-apiserver) cmd_stop_apiserver; cmd_start_apiserver ;;
  compact-etcd) cmd_compact_etcd ;;
  sa-kubeconfig) [[ $# -eq 4 ]] || usage; cmd_sa_kubeconfig "$3" "$4" ;;
  *) usage ;;
esac
