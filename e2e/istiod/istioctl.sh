#!/usr/bin/env bash
# Builds istioctl from the istio.io/istio commit the oracle is built from (e2e/istiod/istioctl/go.mod pins
# the same version as oracle/go.mod), for e2e/istiod/istioctl.test.ts. Cached next to the oracle:
#
#   ${MESHGATE_CACHE:-$HOME/.cache/meshgate}/istiod-oracle/<istio-version>-istioctl-<module-hash>/istioctl
#
# With the oracle built (its modules downloaded, Istio's packages in Go's build cache) this takes about 3
# minutes on 2 cores. Progress goes to stderr; the last line on stdout is the binary's path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod="$here/istioctl"
min_go_minor=26 # the `go` line of istioctl/go.mod

log() { printf '[e2e/istiod/istioctl] %s\n' "$*" >&2; }
die() {
  printf '[e2e/istiod/istioctl] error: %s\n' "$*" >&2
  exit 1
}

# shellcheck source=../../scripts/lib/go.sh
source "$here/../../scripts/lib/go.sh"
version_of() { go_mod_version "$1" istio.io/istio; }
istio_version="$(version_of "$mod/go.mod")"
[[ -n "$istio_version" ]] || die "cannot read the istio.io/istio version from $mod/go.mod"
[[ "$istio_version" == "$(version_of "$here/oracle/go.mod")" ]] ||
  die "istioctl/go.mod pins istio.io/istio $istio_version but oracle/go.mod pins $(version_of "$here/oracle/go.mod"): keep them one version"
module_hash="$(cat "$mod/go.mod" "$mod/go.sum" "$mod/tools.go" | sha256sum | cut -c1-12)"
out="${MESHGATE_CACHE:-$HOME/.cache/meshgate}/istiod-oracle/$istio_version-istioctl-$module_hash"
bin="$out/istioctl"

if [[ -x "$bin" ]]; then
  log "cached: $bin"
  printf '%s\n' "$bin"
  exit 0
fi

go_hint="istioctl ($istio_version) needs Go >= 1.$min_go_minor to build; install Go (https://go.dev/doc/install) and put \`go\` on PATH"
go_require "$min_go_minor" "$go_hint"
if ! go_cache_lock "$out" && [[ -x "$bin" ]]; then
  printf '%s\n' "$bin"
  exit 0
fi

export CGO_ENABLED=0 GOTOOLCHAIN=local
start=$SECONDS
log "building istioctl (istio.io/istio $istio_version) with $go_version: about 3 minutes once the oracle is built (its modules and packages are reused), longer cold; progress every minute"
(while sleep 60 >/dev/null 2>&1 </dev/null; do log "still building ($(((SECONDS - start) / 60)) min)"; done) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
(cd "$mod" && nice -n 10 go build -mod=readonly -buildvcs=false -trimpath -ldflags='-s -w' -o "$out/.istioctl.tmp" istio.io/istio/istioctl/cmd/istioctl) ||
  die "building istioctl failed (see the output above)"
mv -f "$out/.istioctl.tmp" "$bin"
log "built in $((SECONDS - start)) s: $bin"
printf '%s\n' "$bin"
