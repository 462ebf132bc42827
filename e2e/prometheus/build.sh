#!/usr/bin/env bash
# Builds Prometheus (github.com/prometheus/prometheus/cmd/prometheus; module/go.mod pins it) from the Go module
# proxy into a cache outside the clone, for the e2e suites that scrape the gateway with a real Prometheus
# (e2e/lib/prometheus.ts):
#
#   ${MESHGATE_CACHE:-$HOME/.cache/meshgate}/prometheus/<version>-<module-hash>/prometheus
#
# Service discovery: only kubernetes_sd (Prometheus' own build tags remove_all_sd + enable_kubernetes_sd drop
# the cloud providers' SDKs). No web UI assets (the builtinassets tag is off): the HTTP API is all the tests use.
# Cold (empty Go module and build caches): about 6 minutes of CPU, 8 min measured on 2 cores while other suites
# loaded the machine; it leaves ~1 GB of modules and 1.2 GB of Go build cache. Warm: no rebuild (20 ms).
# Progress goes to stderr; the last line on stdout is the binary's path.
# Usage: bash e2e/prometheus/build.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod="$here/module"
min_go_minor=26 # the `go` line of module/go.mod
tags='remove_all_sd,enable_kubernetes_sd'

log() { printf '[e2e/prometheus/build] %s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf '[e2e/prometheus/build] %s error: %s\n' "$(date +%H:%M:%S)" "$*" >&2
  exit 1
}

# shellcheck source=../../scripts/lib/go.sh
source "$here/../../scripts/lib/go.sh"
module_version="$(go_mod_version "$mod/go.mod" github.com/prometheus/prometheus)"
[[ "$module_version" =~ ^v0\.([0-9])([0-9]+)\.([0-9]+)$ ]] ||
  die "cannot read the github.com/prometheus/prometheus version (v0.MNN.P) from $mod/go.mod"
# Prometheus 3.x publishes its Go module as v0.3MM.P for release 3.MM.P.
version="${BASH_REMATCH[1]}.$((10#${BASH_REMATCH[2]})).${BASH_REMATCH[3]}"
module_hash="$({ cat "$mod/go.mod" "$mod/go.sum" "$mod/tools.go"; printf '%s\n' "$tags"; } | sha256sum | cut -c1-12)"
out="${MESHGATE_CACHE:-$HOME/.cache/meshgate}/prometheus/$version-$module_hash"
bin="$out/prometheus"

if [[ -x "$bin" ]]; then
  log "cached: $bin"
  printf '%s\n' "$bin"
  exit 0
fi

go_require "$min_go_minor" "Prometheus $version needs Go >= 1.$min_go_minor to build; install Go (https://go.dev/doc/install) and put \`go\` on PATH"
if ! go_cache_lock "$out" && [[ -x "$bin" ]]; then
  printf '%s\n' "$bin"
  exit 0
fi

# Static, as upstream ships it; local toolchain only; go.sum is authoritative. The version stamp is what
# `prometheus --version` and /api/v1/status/buildinfo report.
export CGO_ENABLED=0 GOTOOLCHAIN=local
stamp="-X github.com/prometheus/common/version.Version=$version -X github.com/prometheus/common/version.Revision=$module_version"
stamp+=" -X github.com/prometheus/common/version.Branch=module -X github.com/prometheus/common/version.BuildUser=meshgate"
start=$SECONDS
log "building Prometheus $version ($module_version) with $go_version, tags $tags (4-8 minutes cold)"
# (The module downloads, a few hundred `go: downloading` lines on a cold machine, are not shown.)
(cd "$mod" && nice -n 10 go build -mod=readonly -buildvcs=false -trimpath -tags "$tags" -ldflags="-s -w $stamp" \
  -o "$out/.prometheus.tmp" github.com/prometheus/prometheus/cmd/prometheus 2>&1) | sed -u '/^go: downloading /d' >&2 ||
  die "building Prometheus failed (see the output above)"
mv -f "$out/.prometheus.tmp" "$bin" # atomic: an interrupted build leaves no half binary
log "built in $((SECONDS - start)) s: $bin"
printf '%s\n' "$bin"
