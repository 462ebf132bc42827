#!/usr/bin/env bash
# `npm run lint`: each step says what it does and how long it took (ESLint's type-aware rules take about a
# minute on a loaded machine, silently otherwise). Stops at the first step that fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { # step DESCRIPTION COMMAND...
  local what="$1" start=$SECONDS
  shift
  printf '[lint] %s %s\n' "$(date +%H:%M:%S)" "$what"
  "$@"
  printf '[lint] %s done in %d s\n' "$(date +%H:%M:%S)" $((SECONDS - start))
}

step 'generating the Envoy types (xds/gen-types.ts -> xds/generated/envoy.d.ts), which the type-aware rules read' node xds/gen-types.ts
step 'ESLint with type information over every .ts/.js file (about a minute)' eslint --max-warnings 0 .
step "Prettier check (npm run format rewrites what it lists)" prettier --check --log-level warn '**/*.{ts,js,mjs}'
