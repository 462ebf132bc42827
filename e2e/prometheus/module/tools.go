//go:build tools

// Package tools pins Prometheus (the metrics server that scrapes the gateway in the e2e suites) for
// ../build.sh, which builds github.com/prometheus/prometheus/cmd/prometheus into the cache.
package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
