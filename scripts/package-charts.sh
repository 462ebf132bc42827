#!/usr/bin/env bash
# Packages charts/base and charts/gateway as a Helm chart repository: `helm lint --strict`, then `helm package`
# for each, then `helm repo index` over the output directory (default dist/charts/, git-ignored). Upload the
# directory to any static host (an object store bucket, GitHub Pages, nginx) and `helm repo add` its URL, or
# push each .tgz to an OCI registry with `helm push CHART.tgz oci://REGISTRY/PATH`. docs/install.md has both.
#
# Usage: bash scripts/package-charts.sh [--url URL] [--source URL] [--out DIR]
#   --url URL     where the directory will be served: index.yaml's download URLs become URL/<chart>-<version>.tgz
#                 (`helm repo index --url`). Without it they are relative, which Helm resolves against the URL the
#                 index was fetched from, so the directory also works wherever it is served.
#   --source URL  the project's source repository, written as `home` and `sources` into the packaged Chart.yaml
#                 (the committed Chart.yaml has neither while the project has no public URL).
#   --out DIR     output directory (default dist/charts). Packages of other versions already there stay listed.
# helm comes from $MESHGATE_HELM, else scripts/fetch-helm.sh. The last line on stdout is the output directory.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
charts=(base gateway)
url="" source="" out="$repo/dist/charts"

log() { printf '[package-charts] %s\n' "$*" >&2; }
die() { printf '[package-charts] error: %s\n' "$*" >&2; exit 1; }

while (($#)); do
  case "$1" in
    --url) url="${2:?--url needs a URL}"; shift 2 ;;
    --source) source="${2:?--source needs a URL}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    *) die "unknown argument '$1' (usage: bash scripts/package-charts.sh [--url URL] [--source URL] [--out DIR])" ;;
  esac
done
for u in "$url" "$source"; do
  [[ -z "$u" || "$u" =~ ^https?://[^[:space:]]+$ ]] || die "'$u' is not an http(s) URL"
done

helm="${MESHGATE_HELM:-}"
if [[ -z "$helm" ]]; then
  helm="$(bash "$repo/scripts/fetch-helm.sh" | tail -n 1)/helm"
fi
[[ -x "$helm" ]] || die "no helm at $helm (set MESHGATE_HELM, or run scripts/fetch-helm.sh)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

for chart in "${charts[@]}"; do
  src="$repo/charts/$chart"
  "$helm" lint --strict "$src" >"$tmp/lint.txt" 2>&1 || { cat "$tmp/lint.txt" >&2; die "helm lint --strict charts/$chart failed"; }
  # A copy, so that --source edits the packaged Chart.yaml and never the checkout's.
  cp -R "$src" "$tmp/$chart"
  if [[ -n "$source" ]]; then
    if grep -qE '^(home|sources):' "$tmp/$chart/Chart.yaml"; then
      die "charts/$chart/Chart.yaml already sets home or sources: drop --source"
    fi
    printf 'home: %s\nsources:\n  - %s\n' "$source" "$source" >>"$tmp/$chart/Chart.yaml"
  fi
  # helm logs an INFO line for files/chart-defaults.yaml, a symbolic link it packages as a copy.
  "$helm" package "$tmp/$chart" --destination "$out" 2> >(grep -v 'found symbolic link in path' >&2) >/dev/null ||
    die "helm package charts/$chart failed"
  version="$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$src/Chart.yaml")"
  log "charts/$chart: $out/$chart-$version.tgz"
done

"$helm" repo index "$out" ${url:+--url "$url"} || die "helm repo index $out failed"
log "index: $out/index.yaml${url:+ (served from $url)}"
printf '%s\n' "$out"
