#!/usr/bin/env bash
# The Kubernetes e2e suite, as `npm run e2e:kube` runs it:
#   1. e2e/kube/build.sh       kube-apiserver, kube-controller-manager, etcd (cached; needs Go on a cold machine)
#   2. scripts/fetch-helm.sh   helm and kubectl (cached)
#      e2e/prometheus/build.sh Prometheus, for prometheus.test.ts (cached; needs Go on a cold machine unless
#                              $PROMETHEUS names a binary)
#      e2e/otelcol/build.sh    the OpenTelemetry Collector, for tracing.test.ts (likewise, or $OTELCOL)
#      e2e/istiod/istioctl.sh  istioctl, for validate.test.ts (likewise, or $ISTIOCTL)
#   3. node --test 'e2e/kube/**/*.test.ts', one file at a time (each gateway pod binds the chart's fixed
#      ports 8080, 8443, 15000, 15020, 15021, 15090 (xDS: a Unix socket), as a pod does in its own network namespace),
#      inside e2e/kube/netns.sh: a private network and PID namespace, so pods get 10.244.x.y addresses,
#      nothing leaves the machine, and every process the suite started dies with it, whatever happens.
# With E2E_KUBECONFIG set the tests run directly (an external API server is not reachable from inside a
# private network namespace), and the build step is skipped (no Go needed).
#
# Usage: bash e2e/kube/run.sh [node --test options...]
#   e.g. bash e2e/kube/run.sh --test-name-pattern=walkthrough
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../.."

if [[ -z "${E2E_KUBECONFIG:-}" ]]; then bash e2e/kube/build.sh >/dev/null; fi
bash scripts/fetch-helm.sh >/dev/null
# Istio's gateway chart (Go module cache), which istio-upgrade.test.ts installs to upgrade from (local cluster only:
# the test does not run on E2E_KUBECONFIG, where Go is not needed).
if [[ -z "${E2E_KUBECONFIG:-}" ]]; then bash scripts/fetch-istio-chart.sh >/dev/null; fi
# Istio's CRDs (the same module), which crds.test.ts installs to compare charts/base with.
bash scripts/fetch-istio-crds.sh >/dev/null
# The Gateway API's standard CRDs (its Go module, at the version Istio requires), for gateway-api.test.ts (local cluster
# only: on E2E_KUBECONFIG the cluster's own Gateway API CRDs are used when installed).
if [[ -z "${E2E_KUBECONFIG:-}" ]]; then bash scripts/fetch-gateway-api-crds.sh >/dev/null; fi
PROMETHEUS="${PROMETHEUS:-$(bash e2e/prometheus/build.sh)}"
export PROMETHEUS
# Built before entering the private network namespace, which has no route to the Go module proxy.
OTELCOL="${OTELCOL:-$(bash e2e/otelcol/build.sh | tail -1)}"
export OTELCOL
# istioctl (the fidelity oracle's Istio commit), which validate.test.ts compares `meshgate validate` with; likewise.
ISTIOCTL="${ISTIOCTL:-$(bash e2e/istiod/istioctl.sh | tail -1)}"
export ISTIOCTL

# The project's Node.js 24 (the `node` devDependency, as under `npm run`), else a node on PATH.
node_bin="$PWD/node_modules/.bin/node"
[[ -x "$node_bin" ]] || node_bin="$(command -v node)"
tests=("$node_bin" --test --test-concurrency=1 --test-timeout=300000 "$@" 'e2e/kube/**/*.test.ts')
if [[ -n "${E2E_KUBECONFIG:-}" ]]; then
  exec "${tests[@]}"
fi
exec bash e2e/kube/netns.sh "${tests[@]}"
