#!/usr/bin/env bash
# Finds the Kubernetes Gateway API's standard-channel CRDs (config/crd/standard of the sigs.k8s.io/gateway-api
# module, at the version Istio's module requires, as e2e/istiod/oracle/go.mod records it) in the Go module cache,
# downloading the module from the Go module proxy the first time. e2e/kube/gateway-api.test.ts installs them.
# Never copied into the repository. Progress goes to stderr; the last line on stdout is the directory.
# Usage: bash scripts/fetch-gateway-api-crds.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[fetch-gateway-api-crds] %s\n' "$*" >&2; }
die() { printf '[fetch-gateway-api-crds] error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib/go.sh
source "$here/lib/go.sh"

go_mod="$here/../e2e/istiod/oracle/go.mod"
version="$(go_mod_version "$go_mod" sigs.k8s.io/gateway-api)"
[[ -n "$version" ]] || die "cannot read the sigs.k8s.io/gateway-api version from $go_mod"
go_require 21 "the Gateway API CRDs come from the sigs.k8s.io/gateway-api Go module: install Go (https://go.dev/doc/install) and put \`go\` on PATH"

dir="$(go env GOMODCACHE)/sigs.k8s.io/gateway-api@$version/config/crd/standard"
if [[ -d "$dir" ]]; then
  log "cached: $dir"
else
  log "downloading sigs.k8s.io/gateway-api@$version from the Go module proxy (once; then cached in $(go env GOMODCACHE))"
  # Outside any module: GOFLAGS such as -mod=vendor must not apply.
  (cd / && GOFLAGS= go mod download sigs.k8s.io/gateway-api@"$version") || die "go mod download sigs.k8s.io/gateway-api@$version failed (is the Go module proxy reachable?)"
  [[ -d "$dir" ]] || die "sigs.k8s.io/gateway-api@$version has no config/crd/standard"
fi
printf '%s\n' "$dir"
