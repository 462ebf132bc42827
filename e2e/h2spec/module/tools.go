//go:build tools

// Package tools pins h2spec (the HTTP/2 conformance suite) for ../build.sh, which builds
// github.com/summerwind/h2spec/cmd/h2spec into the cache.
package tools

import _ "github.com/summerwind/h2spec/cmd/h2spec"
