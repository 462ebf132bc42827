// istiod-oracle: what istiod itself sends an Istio gateway for a set of Kubernetes and Istio objects.
//
// It runs Istio's in-process discovery server (istio.io/istio/pilot/test/xds.FakeDiscoveryServer, the one
// Istio's own gateway tests use) on the objects of one YAML file or directory and prints the Listeners,
// RouteConfigurations, Clusters and ClusterLoadAssignments generated for a Router proxy with the given
// labels in the given namespace, as Envoy proto3 JSON with proto field names, each list sorted by name.
// Objects istiod's validating webhook refuses are left out and listed under "rejected" with its message.
//
//	istiod-oracle --config PATH [--namespace istio-system] [--name istio-ingressgateway]
//	    [--labels istio=ingressgateway,app=istio-ingressgateway] [--ip 10.0.0.1] [--format json|config_dump] [--mesh FILE]
//	    [--proxy-config YAML]
//
// The objects are completed as a settled cluster would hold them, since istiod only indexes what a real
// cluster's controllers produce: a Pod with no phase is Running and Ready; Endpoints without an
// EndpointSlice are mirrored into one; an EndpointSlice's targetRef gets the slice's namespace and a Pod
// it names that the input lacks is added; a gateway Pod with --labels and --ip is added when the input has
// none in --namespace; EndpointSlices are created after everything else, and the output is read once the
// endpoints stop changing. A meshgate golden file's `kind: Identity` and `kind: MeshConfig` documents are
// skipped (use the flags: --mesh takes the mesh config as a file). Gateway API objects (gateway.networking.k8s.io) go
// to the fake API server, where istiod's gateway controller converts them (its builtin `istio` GatewayClass needs no object).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubeyaml "k8s.io/apimachinery/pkg/util/yaml"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/config/schema/gvr"
	kubelib "istio.io/istio/pkg/kube"
	"istio.io/istio/pkg/kube/kclient/clienttest"
	istiolog "istio.io/istio/pkg/log"
	gatewayapiconsts "sigs.k8s.io/gateway-api/pkg/consts"
)

// runner gives the fake server the part of testing.TB it calls.
type runner struct {
	mu       sync.Mutex
	cleanups []func()
}

func (r *runner) Fail()                     { die("the fake discovery server failed") }
func (r *runner) FailNow()                  { die("the fake discovery server failed") }
func (r *runner) Fatal(a ...any)            { die(fmt.Sprint(a...)) }
func (r *runner) Fatalf(f string, a ...any) { die(fmt.Sprintf(f, a...)) }
func (r *runner) Log(a ...any)              { debugf("%s", fmt.Sprint(a...)) }
func (r *runner) Logf(f string, a ...any)   { debugf(f, a...) }
func (r *runner) Helper()                   {}
func (r *runner) Skip(a ...any)             { die("skipped: " + fmt.Sprint(a...)) }
func (r *runner) Cleanup(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, fn)
}
func (r *runner) TempDir() string {
	d, err := os.MkdirTemp("", "istiod-oracle")
	if err != nil {
		die(err.Error())
	}
	return d
}

var verbose bool

func die(msg string) {
	fmt.Fprintf(os.Stderr, "istiod-oracle: %s\n", msg)
	os.Exit(2)
}

func debugf(f string, a ...any) {
	if verbose {
		fmt.Fprintf(os.Stderr, "istiod-oracle: "+f+"\n", a...)
	}
}

// object is one document of the input with where it came from.
type object struct {
	where string
	m     map[string]any
}

func (o object) field(path ...string) string {
	var cur any = o.m
	for _, p := range path {
		next, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = next[p]
	}
	s, _ := cur.(string)
	return s
}

func inputFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".json")) {
			files = append(files, p)
		}
		return err
	})
	sort.Strings(files)
	return files, err
}

func readObjects(path string) ([]object, error) {
	files, err := inputFiles(path)
	if err != nil {
		return nil, err
	}
	var out []object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := kubeyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 1<<16)
		for i := 0; ; i++ {
			var m map[string]any
			if err := dec.Decode(&m); err == io.EOF {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: document %d: %v", f, i, err)
			}
			if m == nil {
				continue
			}
			where := fmt.Sprintf("%s#%d", f, i)
			if items, ok := m["items"].([]any); ok && m["kind"] == "List" {
				for j, it := range items {
					if im, ok := it.(map[string]any); ok {
						out = append(out, object{fmt.Sprintf("%s[%d]", where, j), im})
					}
				}
				continue
			}
			out = append(out, object{where, m})
		}
	}
	return out, nil
}

// meshgate's loader takes objects by kind alone; istiod's decoders need the apiVersion.
var apiVersionOf = map[string]string{
	"Service": "v1", "Pod": "v1", "Secret": "v1", "Namespace": "v1", "Endpoints": "v1", "ConfigMap": "v1",
	"EndpointSlice": "discovery.k8s.io/v1", "Gateway": "networking.istio.io/v1", "VirtualService": "networking.istio.io/v1",
	"DestinationRule": "networking.istio.io/v1", "ServiceEntry": "networking.istio.io/v1",
}

var kubeKind = map[string]bool{
	"v1/Service": true, "v1/Pod": true, "v1/Secret": true, "v1/Namespace": true, "v1/Endpoints": true,
	"v1/ConfigMap": true, "discovery.k8s.io/v1/EndpointSlice": true,
}

// Gateway API objects (GatewayClass, Gateway, HTTPRoute, ReferenceGrant, ...) are Kubernetes objects to istiod:
// its gateway controller reads them from the API server and converts them to Istio Gateways and VirtualServices.
const gatewayAPIGroup = "gateway.networking.k8s.io"

type rejection struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Error     string `json:"error"`
}

// input is the fake cluster's content, split as the fake server takes it.
type input struct {
	configs   []config.Config
	objects   []runtime.Object
	endpoints []*corev1.Endpoints
	rejected  []rejection
	// gatewayAPI: the input has Gateway API objects.
	gatewayAPI bool
}

func (in *input) add(o object) {
	kind, apiVersion := o.field("kind"), o.field("apiVersion")
	if apiVersion == "" {
		apiVersion = apiVersionOf[kind]
		o.m["apiVersion"] = apiVersion
	}
	if (kind == "Identity" || kind == "MeshConfig") && o.field("apiVersion") == "" {
		return
	}
	md, _ := o.m["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
		o.m["metadata"] = md
	}
	if ns, _ := md["namespace"].(string); ns == "" && kind != "Namespace" {
		md["namespace"] = "default"
	}
	js, _ := json.Marshal(o.m)
	group := strings.SplitN(apiVersion, "/", 2)[0]
	switch {
	case strings.HasSuffix(group, ".istio.io"):
		cfgs, unknown, err := crd.ParseInputs(string(js))
		if err != nil {
			in.rejected = append(in.rejected, rejection{kind, o.field("metadata", "namespace"), o.field("metadata", "name"), err.Error()})
			return
		}
		if len(unknown) > 0 {
			fmt.Fprintf(os.Stderr, "istiod-oracle: %s: %s %s is not an istiod kind: skipped\n", o.where, apiVersion, kind)
		}
		for _, c := range cfgs {
			c.Domain = "cluster.local" // short hosts resolve to <ns>.svc.cluster.local, as istiod's CRD client does
			if c.CreationTimestamp.IsZero() {
				c.CreationTimestamp = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			}
			in.configs = append(in.configs, c)
		}
	case kubeKind[apiVersion+"/"+kind] || group == gatewayAPIGroup:
		obj, _, err := kubelib.IstioCodec.UniversalDeserializer().Decode(js, nil, nil)
		if err != nil {
			fmt.Fprintf(os.Stderr, "istiod-oracle: %s: %v: skipped\n", o.where, err)
			return
		}
		in.gatewayAPI = in.gatewayAPI || group == gatewayAPIGroup
		switch v := obj.(type) {
		case *corev1.Endpoints:
			in.endpoints = append(in.endpoints, v)
			return
		case *corev1.Pod:
			settlePod(v)
		case *discoveryv1.EndpointSlice:
			for i := range v.Endpoints {
				if r := v.Endpoints[i].TargetRef; r != nil && r.Namespace == "" {
					r.Namespace = v.Namespace
				}
			}
		}
		in.objects = append(in.objects, obj)
	default:
		fmt.Fprintf(os.Stderr, "istiod-oracle: %s: %s %s is not read: skipped\n", o.where, apiVersion, kind)
	}
}

// settlePod: a hand-written Pod behind an endpoint is, in a cluster, Running and Ready; istiod indexes Ready
// pods only.
func settlePod(p *corev1.Pod) {
	if p.Status.Phase == "" {
		p.Status.Phase = corev1.PodRunning
	}
	ready := false
	for _, c := range p.Status.Conditions {
		ready = ready || c.Type == corev1.PodReady
	}
	if !ready {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue})
	}
	if len(p.Status.PodIPs) == 0 && p.Status.PodIP != "" {
		p.Status.PodIPs = []corev1.PodIP{{IP: p.Status.PodIP}}
	}
}

// mirror turns an Endpoints object without slices into EndpointSlices, as Kubernetes' mirroring controller does.
func mirror(ep *corev1.Endpoints) []runtime.Object {
	var out []runtime.Object
	for i, subset := range ep.Subsets {
		sl := &discoveryv1.EndpointSlice{
			TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", ep.Name, i), Namespace: ep.Namespace, Labels: map[string]string{
				discoveryv1.LabelServiceName: ep.Name, discoveryv1.LabelManagedBy: "endpointslicemirroring-controller.k8s.io",
			}},
			AddressType: discoveryv1.AddressTypeIPv4,
		}
		for _, p := range subset.Ports {
			sl.Ports = append(sl.Ports, discoveryv1.EndpointPort{Name: &p.Name, Port: &p.Port, Protocol: &p.Protocol, AppProtocol: p.AppProtocol})
		}
		for _, group := range []struct {
			addrs []corev1.EndpointAddress
			ready bool
		}{{subset.Addresses, true}, {subset.NotReadyAddresses, false}} {
			for _, a := range group.addrs {
				e := discoveryv1.Endpoint{Addresses: []string{a.IP}, Conditions: discoveryv1.EndpointConditions{Ready: &group.ready}, NodeName: a.NodeName}
				if a.TargetRef != nil {
					ref := *a.TargetRef
					if ref.Namespace == "" {
						ref.Namespace = ep.Namespace
					}
					e.TargetRef = &ref
				}
				if a.Hostname != "" {
					e.Hostname = &a.Hostname
				}
				sl.Endpoints = append(sl.Endpoints, e)
			}
		}
		out = append(out, sl)
	}
	return out
}

// podsBehindSlices: a Pod an EndpointSlice names exists in a cluster; istiod skips an endpoint whose Pod it
// has not seen, so one the input lacks is added with the endpoint's address and readiness.
func podsBehindSlices(objs []runtime.Object) []runtime.Object {
	seen := map[string]bool{}
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			seen[p.Namespace+"/"+p.Name] = true
		}
	}
	var out []runtime.Object
	for _, o := range objs {
		sl, ok := o.(*discoveryv1.EndpointSlice)
		if !ok {
			continue
		}
		for _, e := range sl.Endpoints {
			r := e.TargetRef
			if r == nil || r.Kind != "Pod" || len(e.Addresses) == 0 || seen[r.Namespace+"/"+r.Name] {
				continue
			}
			seen[r.Namespace+"/"+r.Name] = true
			status := corev1.ConditionTrue
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				status = corev1.ConditionFalse
			}
			out = append(out, &corev1.Pod{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
				ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: r.Namespace},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: e.Addresses[0], PodIPs: []corev1.PodIP{{IP: e.Addresses[0]}},
					Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
			})
		}
	}
	return out
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// gatewayPod finds the input's Pod for the gateway (giving it --ip when it has no address), or adds one.
func gatewayPod(objs []runtime.Object, namespace, name string, labels map[string]string, ip string) (string, string, []runtime.Object) {
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok && p.Namespace == namespace && hasLabels(p.Labels, labels) {
			if p.Status.PodIP == "" {
				p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
			}
			return p.Name, p.Status.PodIP, objs
		}
	}
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name + "-0", Namespace: namespace, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "istio-proxy", Image: "istio/proxyv2"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	return pod.Name, ip, append(objs, pod)
}

func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			out[k] = v
		}
	}
	return out
}

func marshal(mo protojson.MarshalOptions, m proto.Message) json.RawMessage {
	b, err := mo.Marshal(m)
	if err != nil {
		die(err.Error())
	}
	return b
}

func main() {
	path := flag.String("config", "", "a YAML/JSON file or a directory of them (required)")
	namespace := flag.String("namespace", "istio-system", "the gateway pod's namespace")
	name := flag.String("name", "istio-ingressgateway", "the gateway workload's name")
	labelList := flag.String("labels", "istio=ingressgateway,app=istio-ingressgateway", "the gateway pod's labels, k=v,...")
	ip := flag.String("ip", "10.0.0.1", "the gateway pod's IP")
	format := flag.String("format", "json", "json: {listeners,routes,clusters,endpoints,rejected}; config_dump: Envoy's /config_dump?include_eds shape")
	meshFile := flag.String("mesh", "", "a MeshConfig YAML file (the `mesh` key of istiod's ConfigMap), read as istiod reads it")
	proxyConfig := flag.String("proxy-config", "", "the gateway pod's proxy.istio.io/config annotation (YAML or JSON), applied over the mesh defaultConfig as pilot-agent does")
	flag.BoolVar(&verbose, "v", false, "istio's own logs on stderr")
	flag.Parse()
	if *path == "" {
		die("usage: istiod-oracle --config PATH [--namespace NS] [--name NAME] [--labels k=v,...] [--ip IP] [--format json|config_dump]")
	}
	logOpts := istiolog.DefaultOptions()
	logOpts.OutputPaths, logOpts.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
	if !verbose {
		logOpts.SetDefaultOutputLevel(istiolog.OverrideScopeName, istiolog.NoneLevel)
	}
	if err := istiolog.Configure(logOpts); err != nil {
		die(err.Error())
	}

	objs, err := readObjects(*path)
	if err != nil {
		die(err.Error())
	}
	labels := parseLabels(*labelList)
	in := &input{}
	for _, o := range objs {
		in.add(o)
	}
	sliced := map[string]bool{}
	for _, o := range in.objects {
		if sl, ok := o.(*discoveryv1.EndpointSlice); ok {
			sliced[sl.Namespace+"/"+sl.Labels[discoveryv1.LabelServiceName]] = true
		}
	}
	for _, ep := range in.endpoints {
		if !sliced[ep.Namespace+"/"+ep.Name] {
			in.objects = append(in.objects, mirror(ep)...)
		}
	}
	in.objects = append(in.objects, podsBehindSlices(in.objects)...)
	podName, podIP, all := gatewayPod(in.objects, *namespace, *name, labels, *ip)

	// Slices last: istiod drops an endpoint whose Pod it has not indexed yet.
	var slices []*discoveryv1.EndpointSlice
	var first []runtime.Object
	for _, o := range all {
		if sl, ok := o.(*discoveryv1.EndpointSlice); ok {
			slices = append(slices, sl)
		} else {
			first = append(first, o)
		}
	}
	t := &runner{}
	opts := xds.FakeOptions{Configs: in.configs, KubernetesObjects: first, DisableSecretAuthorization: true}
	if *meshFile != "" {
		m, err := mesh.ReadMeshConfig(*meshFile)
		if err != nil {
			die(fmt.Sprintf("--mesh %s: %v", *meshFile, err))
		}
		opts.MeshConfig = m
	}
	s := xds.NewFakeDiscoveryServer(t, opts)
	if in.gatewayAPI {
		// The fake API server's CRDs of the Gateway API kinds istiod watches only from a minimum release (GRPCRoute,
		// TCPRoute, TLSRoute) lack the bundle-version annotation every release's CRDs carry, so istiod would ignore
		// those kinds; annotate them as the standard CRDs of the release Istio requires are.
		for _, g := range []schema.GroupVersionResource{gvr.GRPCRoute, gvr.TCPRoute, gvr.TLSRoute} {
			clienttest.MakeCRDWithAnnotations(t, s.KubeClient(), g, map[string]string{gatewayapiconsts.BundleVersionAnnotation: gatewayapiconsts.BundleVersion})
		}
	}
	for _, sl := range slices {
		if _, err := s.KubeClient().Kube().DiscoveryV1().EndpointSlices(sl.Namespace).Create(context.Background(), sl, metav1.CreateOptions{}); err != nil {
			die(fmt.Sprintf("EndpointSlice %s/%s: %v", sl.Namespace, sl.Name, err))
		}
	}
	meta := &model.NodeMetadata{Labels: labels, Namespace: *namespace, ClusterID: "Kubernetes", WorkloadName: *name}
	if *proxyConfig != "" {
		// pilot-agent's getMeshConfig: the annotation over the mesh config's defaultConfig (mesh.ApplyProxyConfig),
		// sent to istiod as the node metadata's PROXY_CONFIG.
		mc, err := mesh.ApplyProxyConfig(*proxyConfig, s.PushContext().Mesh)
		if err != nil {
			die(fmt.Sprintf("--proxy-config: %v", err))
		}
		meta.ProxyConfig = (*model.NodeMetaProxyConfig)(mc.DefaultConfig)
		meta.Annotations = map[string]string{"proxy.istio.io/config": *proxyConfig}
	}
	proxy := s.SetupProxy(&model.Proxy{
		Type: model.Router, ID: podName + "." + *namespace, IPAddresses: []string{podIP},
		ConfigNamespace: *namespace, DNSDomain: *namespace + ".svc.cluster.local", Labels: labels,
		Metadata: meta,
	})
	if len(slices) > 0 || in.gatewayAPI {
		// The gateway controller converts Gateway API objects asynchronously (krt) once the first push context
		// exists, and the conversion's pushes follow; read once the output stops changing.
		// Stable for a second (34 reads 30 ms apart): endpoint events may still be queued on a loaded machine.
		last, stable := "", 0
		for i := 0; i < 300 && stable < 34; i++ {
			time.Sleep(30 * time.Millisecond)
			s.EnsureSynced(t)
			cur := ""
			if len(slices) > 0 {
				// By content: the assignments are new pointers on every call, so printing them never repeats.
				eps := s.Endpoints(proxy)
				sort.Slice(eps, func(i, j int) bool { return eps[i].GetClusterName() < eps[j].GetClusterName() })
				for _, e := range eps {
					cur += string(marshal(protojson.MarshalOptions{}, e))
				}
			}
			if in.gatewayAPI {
				ls := s.Listeners(proxy)
				for _, l := range ls {
					cur += string(marshal(protojson.MarshalOptions{}, l))
				}
				for _, r := range s.RoutesFromListeners(proxy, ls) {
					cur += string(marshal(protojson.MarshalOptions{}, r))
				}
			}
			if cur == last {
				stable++
			} else {
				last, stable = cur, 0
			}
		}
	}

	listeners := s.Listeners(proxy)
	routes := s.RoutesFromListeners(proxy, listeners)
	clusters := s.Clusters(proxy)
	endpoints := s.Endpoints(proxy)
	// istiod's order comes from map iteration and means nothing to Envoy.
	sort.Slice(listeners, func(i, j int) bool { return listeners[i].GetName() < listeners[j].GetName() })
	sort.Slice(routes, func(i, j int) bool { return routes[i].GetName() < routes[j].GetName() })
	sort.Slice(clusters, func(i, j int) bool { return clusters[i].GetName() < clusters[j].GetName() })
	sort.Slice(endpoints, func(i, j int) bool { return endpoints[i].GetClusterName() < endpoints[j].GetClusterName() })

	mo := protojson.MarshalOptions{UseProtoNames: true}
	var out any
	if *format == "config_dump" {
		wrap := func(m proto.Message) json.RawMessage {
			a, err := anypb.New(m)
			if err != nil {
				die(err.Error())
			}
			return marshal(mo, a)
		}
		type obj = map[string]any
		var cds, eds, lds, rds []obj
		for _, c := range clusters {
			cds = append(cds, obj{"version_info": "istiod", "cluster": wrap(c)})
		}
		for _, e := range endpoints {
			eds = append(eds, obj{"version_info": "istiod", "endpoint_config": wrap(e)})
		}
		for _, l := range listeners {
			lds = append(lds, obj{"name": l.GetName(), "active_state": obj{"version_info": "istiod", "listener": wrap(l)}})
		}
		for _, r := range routes {
			rds = append(rds, obj{"version_info": "istiod", "route_config": wrap(r)})
		}
		out = obj{"configs": []obj{
			{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "dynamic_active_clusters": cds},
			{"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump", "dynamic_endpoint_configs": eds},
			{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "dynamic_listeners": lds},
			{"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "dynamic_route_configs": rds},
		}}
	} else {
		res := struct {
			Listeners []json.RawMessage `json:"listeners"`
			Routes    []json.RawMessage `json:"routes"`
			Clusters  []json.RawMessage `json:"clusters"`
			Endpoints []json.RawMessage `json:"endpoints"`
			Rejected  []rejection       `json:"rejected"`
		}{[]json.RawMessage{}, []json.RawMessage{}, []json.RawMessage{}, []json.RawMessage{}, in.rejected}
		for _, l := range listeners {
			res.Listeners = append(res.Listeners, marshal(mo, l))
		}
		for _, r := range routes {
			res.Routes = append(res.Routes, marshal(mo, r))
		}
		for _, c := range clusters {
			res.Clusters = append(res.Clusters, marshal(mo, c))
		}
		for _, e := range endpoints {
			res.Endpoints = append(res.Endpoints, marshal(mo, e))
		}
		if res.Rejected == nil {
			res.Rejected = []rejection{}
		}
		out = res
	}
	b, err := json.Marshal(out)
	if err != nil {
		die(err.Error())
	}
	os.Stdout.Write(append(b, '\n'))
	os.Exit(0) // the fake server's informers need no orderly stop
}
