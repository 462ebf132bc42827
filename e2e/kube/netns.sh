#!/usr/bin/env bash
# Runs a command in a network namespace of its own, in which the pod range is local, and a PID
# namespace of its own, so that everything the command starts (API servers, gateways, backends,
# even detached or orphaned ones) is killed when it ends or when this script is killed.
#
# Why: the API server rejects loopback addresses in EndpointSlices and Endpoints ("may not be
# in the loopback range (127.0.0.0/8, ::1/128)"), so the backends' EndpointSlices cannot name
# 127.0.0.x. Inside this namespace POD_CIDR (default 10.244.0.0/16) is routed to `lo` as a
# local range (AnyIP), so a test backend can bind any address in it (10.244.0.5:8080, ...),
# and Pods / EndpointSlices carry those addresses as in a real cluster. The namespace has no
# other interface: nothing sent inside it can leave the machine, and its ports do not clash
# with anything outside.
#
# Usage: bash e2e/kube/netns.sh COMMAND [ARGS...]
#   e.g. bash e2e/kube/netns.sh node --test e2e/kube/*.test.ts
# The command gets MESHGATE_E2E_NETNS=1 and E2E_POD_CIDR in its environment; inside an
# existing one (MESHGATE_E2E_NETNS=1) this script just runs the command.
# Nothing from the registries can be fetched inside: run e2e/kube/build.sh and
# scripts/fetch-helm.sh before.
# Needs util-linux `unshare` and iproute2 `ip`; root, or unprivileged user namespaces.
set -euo pipefail

self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/netns.sh"
die() { printf '[e2e/kube/netns] error: %s\n' "$*" >&2; exit 1; }

if [[ "${1:-}" == --inside ]]; then
  shift
  ip link set lo up
  ip route add local "$E2E_POD_CIDR" dev lo
  export MESHGATE_E2E_NETNS=1
  # This shell is PID 1 of the namespace: it runs the command as its child (SIGTERM/SIGINT passed on),
  # reaps orphans, and when it exits the kernel kills whatever is left in the namespace.
  set +e
  "$@" &
  child=$!
  trap 'kill -TERM "$child" 2>/dev/null' TERM INT
  while true; do
    wait "$child"
    rc=$?
    kill -0 "$child" 2>/dev/null || break # still running: wait was interrupted by a trapped signal
  done
  exit "$rc"
fi

[[ $# -ge 1 ]] || { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$self" >&2; exit 2; }
if [[ "${MESHGATE_E2E_NETNS:-}" == 1 ]]; then exec "$@"; fi

export E2E_POD_CIDR="${POD_CIDR:-${E2E_POD_CIDR:-10.244.0.0/16}}"
command -v unshare >/dev/null 2>&1 || die "unshare (util-linux) is needed"
command -v ip >/dev/null 2>&1 || die "ip (iproute2) is needed: apt-get install iproute2"

if ((EUID == 0)); then ns=(--net); else ns=(--user --map-root-user --net); fi
# --kill-child: when unshare dies (even by SIGKILL), PID 1 of the namespace gets SIGKILL, and with it every
# process in the namespace. --mount-proc: /proc shows the namespace's PIDs (cluster.sh reads /proc/PID).
ns+=(--pid --fork --kill-child --mount --mount-proc)
unshare "${ns[@]}" true 2>/dev/null ||
  die "cannot create a network namespace here (unshare ${ns[*]} failed): run as root, or enable unprivileged user namespaces"
exec unshare "${ns[@]}" -- bash "$self" --inside "$@"
