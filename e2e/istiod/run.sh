#!/usr/bin/env bash
# The istiod differential, as `npm run test:istiod` runs it: builds (or finds in the cache) the oracle,
# Istio's own translation (e2e/istiod/build.sh: Go needed on a cold machine, about 16 minutes), then
# compares it with meshgate's translator on every golden input and example (differential.test.ts)
# and on generated configs (corpus.test.ts: a few hundred per run; thousands with --long).
# Usage: bash e2e/istiod/run.sh [--long] [node --test options...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../.."
ISTIOD_ORACLE="${ISTIOD_ORACLE:-$(bash e2e/istiod/build.sh)}"
export ISTIOD_ORACLE
node_bin="$PWD/node_modules/.bin/node"
[[ -x "$node_bin" ]] || node_bin="$(command -v node)"
args=()
for a in "$@"; do
  if [[ "$a" == --long ]]; then export ISTIOD_CORPUS_LONG=1; else args+=("$a"); fi
done
exec "$node_bin" --test --test-timeout=300000 ${args[@]+"${args[@]}"} 'e2e/istiod/**/*.test.ts'
