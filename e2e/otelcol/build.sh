#!/usr/bin/env bash
# Builds a minimal OpenTelemetry Collector (module/main.go: OTLP and Zipkin receivers, file exporter; module/go.mod
# pins go.opentelemetry.io/collector/otelcol and the contrib modules, one release) from the Go module proxy into a
# cache outside the clone, for the tracing e2e suite (e2e/lib/otelcol.ts):
#
#   ${MESHGATE_CACHE:-$HOME/.cache/meshgate}/otelcol/<version>-<module-hash>/otelcol
#
# Cold (empty Go module and build caches): a few minutes of CPU on 2 cores. Warm: no rebuild.
# Progress goes to stderr; the last line on stdout is the binary's path.
# Usage: bash e2e/otelcol/build.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod="$here/module"
min_go_minor=26 # the `go` line of module/go.mod

log() { printf '[e2e/otelcol/build] %s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf '[e2e/otelcol/build] %s error: %s\n' "$(date +%H:%M:%S)" "$*" >&2
  exit 1
}

# shellcheck source=../../scripts/lib/go.sh
source "$here/../../scripts/lib/go.sh"
version="$(go_mod_version "$mod/go.mod" go.opentelemetry.io/collector/otelcol)"
[[ "$version" =~ ^v0\.[0-9]+\.[0-9]+$ ]] || die "cannot read the go.opentelemetry.io/collector/otelcol version from $mod/go.mod"
module_hash="$(cat "$mod/go.mod" "$mod/go.sum" "$mod/main.go" | sha256sum | cut -c1-12)"
out="${MESHGATE_CACHE:-$HOME/.cache/meshgate}/otelcol/$version-$module_hash"
bin="$out/otelcol"

if [[ -x "$bin" ]]; then
  log "cached: $bin"
  printf '%s\n' "$bin"
  exit 0
fi

go_require "$min_go_minor" "the collector needs Go >= 1.$min_go_minor to build; install Go (https://go.dev/doc/install) and put \`go\` on PATH"
if ! go_cache_lock "$out" && [[ -x "$bin" ]]; then
  printf '%s\n' "$bin"
  exit 0
fi

# Static; local toolchain only; go.sum is authoritative.
export CGO_ENABLED=0 GOTOOLCHAIN=local
start=$SECONDS
log "building the OpenTelemetry Collector $version with $go_version (a few minutes cold)"
(cd "$mod" && nice -n 10 go build -mod=readonly -buildvcs=false -trimpath -ldflags="-s -w -X main.version=$version" \
  -o "$out/.otelcol.tmp" . 2>&1) | sed -u '/^go: downloading /d' >&2 ||
  die "building the collector failed (see the output above)"
mv -f "$out/.otelcol.tmp" "$bin" # atomic: an interrupted build leaves no half binary
log "built in $((SECONDS - start)) s: $bin"
printf '%s\n' "$bin"
