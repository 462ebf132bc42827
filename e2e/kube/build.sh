#!/usr/bin/env bash
# Builds the local control plane of the Kubernetes e2e suite: kube-apiserver and
# kube-controller-manager from the k8s.io/kubernetes Go module, and etcd from
# go.etcd.io/etcd/server/v3, pinned by the go.mod files beside this script. The binaries are
# cached outside the clone, keyed by version, so a warm machine (or CI's fresh clone on it)
# does not rebuild:
#
#   ${MESHGATE_CACHE:-$HOME/.cache/meshgate}/kube/<k8s-version>-<etcd-version>/
#     {kube-apiserver,kube-controller-manager,etcd}
#
# Progress goes to stderr (timestamped: a line per binary, then every 30 s the modules downloaded and
# packages compiled so far); the last line on stdout is that directory.
# Usage: bash e2e/kube/build.sh            (no-op when the binaries exist)
#        MESHGATE_KUBE_REBUILD=1 bash e2e/kube/build.sh   (rebuild anyway)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
min_go_minor=24 # the `go` line of apiserver/go.mod and etcd/go.mod

log() { printf '[e2e/kube/build] %s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[e2e/kube/build] %s error: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }
# shellcheck source=../../scripts/lib/go.sh
source "$here/../../scripts/lib/go.sh"

k8s_version="$(go_mod_version "$here/apiserver/go.mod" k8s.io/kubernetes)"
etcd_version="$(go_mod_version "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)"
[[ -n "$k8s_version" && -n "$etcd_version" ]] || die "cannot read the pinned versions from $here/{apiserver,etcd}/go.mod"

cache_root="${MESHGATE_CACHE:-$HOME/.cache/meshgate}"
out="$cache_root/kube/$k8s_version-$etcd_version"

all_cached() { [[ -x "$out/kube-apiserver" && -x "$out/kube-controller-manager" && -x "$out/etcd" ]]; }
if [[ -z "${MESHGATE_KUBE_REBUILD:-}" ]] && all_cached; then
  log "cached: kube-apiserver, kube-controller-manager $k8s_version and etcd $etcd_version in $out"
  printf '%s\n' "$out"
  exit 0
fi

go_require "$min_go_minor" "the Kubernetes e2e suite needs Go >= 1.$min_go_minor to build kube-apiserver $k8s_version and etcd $etcd_version; install Go (https://go.dev/doc/install, or your distribution's golang package if it is recent enough) and put \`go\` on PATH, or point E2E_KUBECONFIG at an existing cluster (see e2e/kube/README.md)"

if ! go_cache_lock "$out" && [[ -z "${MESHGATE_KUBE_REBUILD:-}" ]] && all_cached; then
  printf '%s\n' "$out"
  exit 0
fi

# Static binaries as upstream ships them; local toolchain only (no toolchain download);
# go.sum is authoritative (-mod=readonly); no VCS stamp, so the binary does not depend on
# the state of this clone.
export CGO_ENABLED=0 GOTOOLCHAIN=local

elapsed() { printf '%d min %02d s' $((($SECONDS - $1) / 60)) $((($SECONDS - $1) % 60)); }

# Reads `go build -v` output (stdout and stderr): counts the `go: downloading MODULE VERSION` lines and
# the package paths go prints as it compiles them, and every 30 s (also while go prints nothing, as
# when it links) logs how far the build is; any other line (a compiler error) is passed through.
progress() { # progress NAME START
  local name="$1" start="$2" downloaded=0 compiled=0 last='' next=$((SECONDS + 30)) line
  while :; do
    if IFS= read -r -t 30 line; then
      if [[ "$line" == 'go: downloading '* ]]; then
        downloaded=$((downloaded + 1))
      elif [[ "$line" =~ ^[A-Za-z0-9._~/+-]+$ ]]; then
        compiled=$((compiled + 1))
        last="$line"
      else
        printf '%s\n' "$line" >&2
      fi
    elif (($? <= 128)); then
      break # end of go's output (a status above 128 is the 30 s timeout)
    fi
    if ((SECONDS >= next)); then
      if ((compiled == 0)); then
        log "$name: $(elapsed "$start"): downloading modules ($downloaded so far)"
      else
        log "$name: $(elapsed "$start"): $compiled packages compiled ($downloaded modules downloaded), last $last"
      fi
      next=$((SECONDS + 30))
    fi
  done
  if ((compiled > 0 || downloaded > 0)); then log "$name: go build ended: $compiled packages compiled, $downloaded modules downloaded"; fi
}

build() { # build NAME DIR LDFLAGS (DIR: the package, relative to this script)
  local name="$1" dir="$2" ldflags="$3" start=$SECONDS
  if [[ -z "${MESHGATE_KUBE_REBUILD:-}" && -x "$out/$name" ]]; then
    log "$name: cached"
    return
  fi
  log "$name: building e2e/kube/$dir with $go_version (a cold build downloads the modules and compiles for several minutes; progress every 30 s)"
  (cd "$here/$dir" && nice -n 10 go build -v -mod=readonly -buildvcs=false -trimpath -ldflags="$ldflags" -o "$out/.$name.tmp" . 2>&1) |
    progress "$name" "$start" || die "building $name failed (see the output above)"
  mv -f "$out/.$name.tmp" "$out/$name" # atomic: an interrupted build leaves no half binary
  log "$name: built in $(elapsed "$start"): $out/$name"
}

# The version kube-apiserver reports on /version (kubectl version, Helm's kubeVersion checks):
# what Kubernetes' own hack/lib/version.sh stamps into a release build.
k8s_minor="${k8s_version#v1.}"; k8s_minor="${k8s_minor%%.*}"
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
log "building into $out: etcd $etcd_version, then kube-apiserver and kube-controller-manager $k8s_version"
build etcd etcd "-s -w"
build kube-apiserver apiserver "-s -w$stamp"
# Same module and build cache as kube-apiserver: about 2 more minutes on a cold machine.
build kube-controller-manager apiserver/kube-controller-manager "-s -w$stamp"

log "done: kube-apiserver, kube-controller-manager $k8s_version and etcd $etcd_version in $out"
printf '%s\n' "$out"
