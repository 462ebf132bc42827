#!/usr/bin/env bash
# Finds Istio's own CRDs (manifests/charts/base/files/crd-all.gen.yaml of the istio.io/istio module, at the version
# the istiod oracle pins in e2e/istiod/oracle/go.mod) in the Go module cache, downloading the module from the Go
# module proxy the first time (`go mod download`; cached in GOMODCACHE afterwards). e2e/kube/crds.test.ts installs
# them to compare what Istio's CRDs and charts/base accept. Never copied into the repository.
# Progress goes to stderr; the last line on stdout is the file's path (read-only, as the module cache is).
# Usage: bash scripts/fetch-istio-crds.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[fetch-istio-crds] %s\n' "$*" >&2; }
die() { printf '[fetch-istio-crds] error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib/go.sh
source "$here/lib/go.sh"

go_mod="$here/../e2e/istiod/oracle/go.mod"
version="$(go_mod_version "$go_mod" istio.io/istio)"
[[ -n "$version" ]] || die "cannot read the istio.io/istio version from $go_mod"
go_require 21 "Istio's CRDs come from the istio.io/istio Go module: install Go (https://go.dev/doc/install) and put \`go\` on PATH"

file="$(go env GOMODCACHE)/istio.io/istio@$version/manifests/charts/base/files/crd-all.gen.yaml"
if [[ -f "$file" ]]; then
  log "cached: $file"
else
  log "downloading istio.io/istio@$version from the Go module proxy (once; then cached in $(go env GOMODCACHE))"
  # Outside any module: GOFLAGS such as -mod=vendor must not apply.
  (cd / && GOFLAGS= go mod download istio.io/istio@"$version") || die "go mod download istio.io/istio@$version failed (is the Go module proxy reachable?)"
  [[ -f "$file" ]] || die "istio.io/istio@$version has no manifests/charts/base/files/crd-all.gen.yaml"
fi
printf '%s\n' "$file"
