#!/usr/bin/env bash
# Builds the istiod oracle (e2e/istiod/oracle: Istio's own translation, run in-process) from the
# istio.io/istio Go module pinned by oracle/go.mod. The binary is cached outside the clone, keyed by
# the Istio version and the program's source, so a warm machine (or CI's fresh clone on it) does not
# rebuild:
#
#   ${MESHGATE_CACHE:-$HOME/.cache/meshgate}/istiod-oracle/<istio-version>-<source-hash>/istiod-oracle
#
# A cold build downloads Istio's modules and compiles for about 16 minutes on 2 cores (2.9 GB peak).
# Progress goes to stderr; the last line on stdout is the binary's path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
min_go_minor=26 # the `go` line of oracle/go.mod

log() { printf '[e2e/istiod/build] %s\n' "$*" >&2; }
die() { printf '[e2e/istiod/build] error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=../../scripts/lib/go.sh
source "$here/../../scripts/lib/go.sh"

istio_version="$(go_mod_version "$here/oracle/go.mod" istio.io/istio)"
[[ -n "$istio_version" ]] || die "cannot read the istio.io/istio version from $here/oracle/go.mod"
source_hash="$(cat "$here/oracle/go.mod" "$here/oracle/go.sum" "$here/oracle/main.go" | sha256sum | cut -c1-12)"
out="${MESHGATE_CACHE:-$HOME/.cache/meshgate}/istiod-oracle/$istio_version-$source_hash"
bin="$out/istiod-oracle"

if [[ -x "$bin" ]]; then
  log "cached: $bin"
  printf '%s\n' "$bin"
  exit 0
fi

go_require "$min_go_minor" "the istiod differential needs Go >= 1.$min_go_minor to build Istio's translation ($istio_version); install Go (https://go.dev/doc/install) and put \`go\` on PATH"

if ! go_cache_lock "$out" && [[ -x "$bin" ]]; then printf '%s\n' "$bin"; exit 0; fi

export CGO_ENABLED=0 GOTOOLCHAIN=local
start=$SECONDS
log "building istiod-oracle (istio.io/istio $istio_version) with $go_version: a cold build downloads Istio's modules and compiles for about 16 minutes on 2 cores; progress every minute"
( while sleep 60 >/dev/null 2>&1 </dev/null; do log "still building ($(( (SECONDS - start) / 60 )) min)"; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
(cd "$here/oracle" && nice -n 10 go build -mod=readonly -buildvcs=false -trimpath -ldflags='-s -w' -o "$out/.istiod-oracle.tmp" .) ||
  die "building istiod-oracle failed (see the output above)"
mv -f "$out/.istiod-oracle.tmp" "$bin"
log "built in $((SECONDS - start)) s: $bin"
printf '%s\n' "$bin"
