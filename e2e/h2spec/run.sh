#!/usr/bin/env bash
# HTTP/2 conformance, as `npm run test:h2spec` runs it: builds (or finds in the cache) h2spec from the Go module
# proxy (e2e/h2spec/build.sh, seconds), then runs it against `meshgate local` on h2c and on TLS with ALPN h2
# (h2spec.test.ts). Usage: bash e2e/h2spec/run.sh [node --test options...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../.."
H2SPEC="${H2SPEC:-$(bash e2e/h2spec/build.sh)}"
export H2SPEC
node_bin="$PWD/node_modules/.bin/node"
[[ -x "$node_bin" ]] || node_bin="$(command -v node)"
exec "$node_bin" --test --test-timeout=300000 "$@" 'e2e/h2spec/**/*.test.ts'
