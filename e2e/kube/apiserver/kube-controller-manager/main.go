// Command kube-controller-manager is the upstream Kubernetes controller manager, built from
// the same k8s.io/kubernetes module as kube-apiserver. The e2e cluster runs a few of its
// controllers (EndpointSlice, ServiceAccount, namespace, garbage collector) when asked to.
// It adds nothing: the same entry point as cmd/kube-controller-manager in Kubernetes.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	command := app.NewControllerManagerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
