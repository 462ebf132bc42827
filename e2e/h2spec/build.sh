#!/usr/bin/env bash
# Builds h2spec (github.com/summerwind/h2spec, the HTTP/2 conformance suite; module/go.mod pins it) from the
# Go module proxy into a cache outside the clone, for e2e/h2spec/h2spec.test.ts:
#
#   ${MESHGATE_CACHE:-$HOME/.cache/meshgate}/h2spec/<version>-<module-hash>/h2spec
#
# About 30 seconds cold. Progress goes to stderr; the last line on stdout is the binary's path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod="$here/module"
min_go_minor=26 # the `go` line of module/go.mod

log() { printf '[e2e/h2spec/build] %s\n' "$*" >&2; }
die() {
  printf '[e2e/h2spec/build] error: %s\n' "$*" >&2
  exit 1
}

# shellcheck source=../../scripts/lib/go.sh
source "$here/../../scripts/lib/go.sh"
version="$(go_mod_version "$mod/go.mod" github.com/summerwind/h2spec)"
[[ -n "$version" ]] || die "cannot read the github.com/summerwind/h2spec version from $mod/go.mod"
module_hash="$(cat "$mod/go.mod" "$mod/go.sum" "$mod/tools.go" | sha256sum | cut -c1-12)"
out="${MESHGATE_CACHE:-$HOME/.cache/meshgate}/h2spec/$version-$module_hash"
bin="$out/h2spec"

if [[ -x "$bin" ]]; then
  log "cached: $bin"
  printf '%s\n' "$bin"
  exit 0
fi

go_require "$min_go_minor" "h2spec ($version) needs Go >= 1.$min_go_minor to build; install Go (https://go.dev/doc/install) and put \`go\` on PATH"
if ! go_cache_lock "$out" && [[ -x "$bin" ]]; then
  printf '%s\n' "$bin"
  exit 0
fi

export CGO_ENABLED=0 GOTOOLCHAIN=local
start=$SECONDS
log "building h2spec $version with $go_version"
(cd "$mod" && nice -n 10 go build -mod=readonly -buildvcs=false -trimpath -ldflags='-s -w' -o "$out/.h2spec.tmp" github.com/summerwind/h2spec/cmd/h2spec) ||
  die "building h2spec failed (see the output above)"
mv -f "$out/.h2spec.tmp" "$bin"
log "built in $((SECONDS - start)) s: $bin"
printf '%s\n' "$bin"
