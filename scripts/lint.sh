#!/usr/bin/env bash
# `npm run lint`: each step says what it does, how long it took and whether it passed (ESLint's type-aware
# rules take up to a minute on a loaded machine, silently otherwise). The checks run even when an earlier one
# failed, so one run lists every problem; the exit status is non-zero if any failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

failed=()
step() { # step NAME DESCRIPTION COMMAND...
  local name="$1" what="$2" start=$SECONDS
  shift 2
  printf '[lint] %s %s: %s\n' "$(date +%H:%M:%S)" "$name" "$what"
  if "$@"; then
    printf '[lint] %s %s: pass in %d s\n' "$(date +%H:%M:%S)" "$name" $((SECONDS - start))
  else
    printf '[lint] %s %s: FAIL in %d s\n' "$(date +%H:%M:%S)" "$name" $((SECONDS - start))
    failed+=("$name")
  fi
}

step types 'generating the Envoy types (xds/gen-types.ts -> xds/generated/envoy.d.ts), which the type-aware rules read' node xds/gen-types.ts
step eslint 'ESLint with type information over every .ts/.js file (up to a minute on a loaded machine)' eslint --max-warnings 0 .
step prettier 'Prettier check (npm run format rewrites the files it lists)' prettier --check --log-level warn '**/*.{ts,js,mjs}'
step knip 'knip: unused files, exports, types and dependencies (knip.json)' knip --no-progress
# A quoting slip in a script is a syntax error only bash reports, and in scripts/test.sh it stops every stage.
shell_syntax() { git ls-files -z '*.sh' .ci/run | xargs -0 -n1 bash -n; }
step shell 'bash -n over every tracked shell script' shell_syntax

if ((${#failed[@]} > 0)); then
  printf '[lint] failed: %s\n' "${failed[*]}"
  exit 1
fi
