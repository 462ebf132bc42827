// Command etcd is the upstream etcd server, built from the go.etcd.io/etcd/server/v3
// module for the Kubernetes e2e suite's local control plane. It adds nothing.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
