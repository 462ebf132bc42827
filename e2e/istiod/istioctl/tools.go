//go:build tools

// Package tools pins istioctl to the istio.io/istio version the oracle uses (go.mod): istiod-side and
// istioctl come from one Istio commit. ../istioctl.sh builds istio.io/istio/istioctl/cmd/istioctl.
package tools

import _ "istio.io/istio/istioctl/cmd/istioctl"
