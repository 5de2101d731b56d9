//go:build tools

// Package tools pins the Knative Functions CLI (knative.dev/func) that
// 'make func-cli' builds into .jobflow/tools/func-<version>/func.
package tools

import _ "knative.dev/func/cmd/func"
