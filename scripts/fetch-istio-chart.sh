#!/usr/bin/env bash
# Finds Istio's own gateway chart (manifests/charts/gateway of the istio.io/istio module, at the version the
# istiod oracle pins in e2e/istiod/oracle/go.mod) in the Go module cache, downloading the module from the Go
# module proxy the first time (`go mod download`, about 40 MB; cached in GOMODCACHE afterwards). The chart tests
# read its values.yaml; the Kubernetes e2e installs it, to upgrade from it. Never copied into the repository.
# Progress goes to stderr; the last line on stdout is the chart's directory (read-only, as the module cache is).
# Usage: bash scripts/fetch-istio-chart.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[fetch-istio-chart] %s\n' "$*" >&2; }
die() { printf '[fetch-istio-chart] error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib/go.sh
source "$here/lib/go.sh"

go_mod="$here/../e2e/istiod/oracle/go.mod"
version="$(go_mod_version "$go_mod" istio.io/istio)"
[[ -n "$version" ]] || die "cannot read the istio.io/istio version from $go_mod"
go_require 21 "Istio's gateway chart comes from the istio.io/istio Go module: install Go (https://go.dev/doc/install) and put \`go\` on PATH"

chart="$(go env GOMODCACHE)/istio.io/istio@$version/manifests/charts/gateway"
if [[ -f "$chart/Chart.yaml" ]]; then
  log "cached: $chart"
else
  log "downloading istio.io/istio@$version from the Go module proxy (once; then cached in $(go env GOMODCACHE))"
  # Outside any module: GOFLAGS such as -mod=vendor must not apply.
  (cd / && GOFLAGS= go mod download istio.io/istio@"$version") || die "go mod download istio.io/istio@$version failed (is the Go module proxy reachable?)"
  [[ -f "$chart/Chart.yaml" ]] || die "istio.io/istio@$version has no manifests/charts/gateway/Chart.yaml"
fi
printf '%s\n' "$chart"
