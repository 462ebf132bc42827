#!/usr/bin/env bash
# Fetches the Kubernetes OpenAPI spec of the oldest and the newest Kubernetes the charts support, for the
# chart tests' schema validation of rendered objects (charts/tests/kube-schema.test.ts). Both come from the
# k8s.io/kubernetes Go module (`go mod download`, into Go's module cache, as e2e/kube/build.sh uses it):
#   api/openapi-spec/swagger.json                 every built-in kind's schema (types, fields, required)
#   pkg/generated/openapi/zz_generated.openapi.go the same definitions in Go, the only place with the enums
# Both files are copied, never committed, to
#
#   ${MESHGATE_CACHE:-$HOME/.cache/meshgate}/k8s-openapi/<version>/
#
# Versions: the oldest is pinned here (the last patch of the minor in charts/*/Chart.yaml `kubeVersion`; the
# test checks that they agree), the newest is the one e2e/kube/apiserver/go.mod pins for the e2e API server.
# Progress goes to stderr; stdout has one line per version: `<version> <directory>`, oldest first.
# Usage: bash scripts/fetch-k8s-openapi.sh     (no-op when both are cached)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
oldest="v1.27.16"

log() { printf '[fetch-k8s-openapi] %s\n' "$*" >&2; }
die() { printf '[fetch-k8s-openapi] error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib/go.sh
source "$here/lib/go.sh"

newest="$(go_mod_version "$here/../e2e/kube/apiserver/go.mod" k8s.io/kubernetes)"
[[ -n "$newest" ]] || die "cannot read the k8s.io/kubernetes version from e2e/kube/apiserver/go.mod"
cache_root="${MESHGATE_CACHE:-$HOME/.cache/meshgate}/k8s-openapi"

files=(api/openapi-spec/swagger.json pkg/generated/openapi/zz_generated.openapi.go)
cached() { local f; for f in "${files[@]}"; do [[ -s "$1/${f##*/}" ]] || return 1; done; }

fetch() { # fetch VERSION
  local version="$1" out="$cache_root/$1" json dir f
  if cached "$out"; then
    log "cached: $version in $out"
    return
  fi
  go_require 17 "the chart tests read the Kubernetes $version OpenAPI spec from the k8s.io/kubernetes Go module and need \`go\` (>= 1.17) to download it: install Go (https://go.dev/doc/install) and put it on PATH"
  log "go mod download k8s.io/kubernetes@$version (about 20 MB from \$GOPROXY, ${GOPROXY:-$(go env GOPROXY)})"
  # From / (outside any module) only this module is downloaded. -json puts errors in its output too.
  json="$(cd / && GOTOOLCHAIN=local go mod download -json "k8s.io/kubernetes@$version" 2>&1)" ||
    die "go mod download k8s.io/kubernetes@$version failed (GOPROXY=$(go env GOPROXY)): $(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",*$/\1/p' | head -1)"
  dir="$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -n "$dir" && -d "$dir" ]] || die "go mod download k8s.io/kubernetes@$version printed no module directory"
  mkdir -p "$out"
  for f in "${files[@]}"; do
    [[ -s "$dir/$f" ]] || die "k8s.io/kubernetes@$version has no $f"
    cp "$dir/$f" "$out/.${f##*/}.tmp"
    chmod u+w "$out/.${f##*/}.tmp" # the module cache is read-only
    mv -f "$out/.${f##*/}.tmp" "$out/${f##*/}" # atomic: a reader never sees half a file
  done
  log "$version: ${files[*]##*/} in $out"
}

for v in "$oldest" "$newest"; do
  fetch "$v"
  printf '%s %s\n' "$v" "$cache_root/$v"
done
