//go:build unix

package test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/meshka/meshka/config"
)

// helmVersion is the helm the chart is checked with, built from source
// through the Go module proxy: no helm binary needs to be installed.
const helmVersion = "v3.22.0"

// chartDir is the chart, relative to the repository root, where helm runs.
const chartDir = "deploy/helm/meshka"

// TestHelmChart lints deploy/helm/meshka with real helm and checks what
// it renders: a StatefulSet of 3 whose node ids come from the pod
// ordinal, probes on the admin listener, a headless Service that
// publishes pods before they are ready for the gossip seed, a client
// Service, a PodDisruptionBudget, a meshka.yaml with admin.listen, and a
// ServiceMonitor only when serviceMonitor.enabled is set.
func TestHelmChart(t *testing.T) {
	helm := buildHelm(t)

	for _, args := range [][]string{
		{"lint", "--strict", chartDir},
		{"lint", "--strict", chartDir, "--set", "serviceMonitor.enabled=true,mqtt.enabled=true,http.enabled=true"},
	} {
		if out, err := helm.run(args...); err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	t.Run("Defaults", func(t *testing.T) {
		r := helm.template(t)
		sts := r.statefulSet(t)
		if sts.Spec.Replicas != 3 {
			t.Errorf("StatefulSet replicas %d, want 3", sts.Spec.Replicas)
		}
		headless := r.headlessService(t)
		if sts.Spec.ServiceName != headless.Metadata.Name {
			t.Errorf("StatefulSet serviceName %q, want the headless Service %q", sts.Spec.ServiceName, headless.Metadata.Name)
		}
		c := sts.container(t)
		checkNodeID(t, c)
		checkProbes(t, c)
		checkSecurity(t, sts)
		for _, p := range []struct {
			name, protocol string
			port           int
		}{{"kafka", "TCP", 9092}, {"gossip-tcp", "TCP", 7946}, {"gossip-udp", "UDP", 7946}, {"remote", "TCP", 7947}, {"admin", "TCP", 9644}} {
			if !slices.ContainsFunc(c.Ports, func(cp containerPort) bool {
				return cp.Name == p.name && cp.ContainerPort == p.port && cp.Protocol == p.protocol
			}) {
				t.Errorf("container ports %+v lack %s %d/%s", c.Ports, p.name, p.port, p.protocol)
			}
			if !headless.hasPort(p.name, p.port, p.protocol) {
				t.Errorf("headless Service ports %+v lack %s %d/%s", headless.Spec.Ports, p.name, p.port, p.protocol)
			}
		}

		client := r.clientService(t)
		if !client.hasPort("kafka", 9092, "TCP") {
			t.Errorf("client Service ports %+v lack kafka 9092", client.Spec.Ports)
		}
		if client.hasPort("mqtt", 1883, "TCP") || client.hasPort("http", 8080, "TCP") {
			t.Errorf("client Service ports %+v hold MQTT or HTTP, which are off by default", client.Spec.Ports)
		}
		if !sameLabels(client.Spec.Selector, sts.Spec.Selector.MatchLabels) {
			t.Errorf("client Service selects %v, the StatefulSet's pods are %v", client.Spec.Selector, sts.Spec.Selector.MatchLabels)
		}

		pdbs := r.kind("PodDisruptionBudget")
		if len(pdbs) != 1 {
			t.Fatalf("%d PodDisruptionBudgets, want 1", len(pdbs))
		}
		var pdb struct {
			Spec struct {
				MaxUnavailable int `yaml:"maxUnavailable"`
				Selector       struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				}
			}
		}
		decodeNode(t, pdbs[0], &pdb)
		if pdb.Spec.MaxUnavailable != 1 || !sameLabels(pdb.Spec.Selector.MatchLabels, sts.Spec.Selector.MatchLabels) {
			t.Errorf("PodDisruptionBudget %+v, want maxUnavailable 1 over the StatefulSet's pods %v", pdb.Spec, sts.Spec.Selector.MatchLabels)
		}

		cfg := r.meshkaYAML(t)
		if got := lookup(cfg, "admin", "listen"); got != "0.0.0.0:9644" {
			t.Errorf("meshka.yaml admin.listen %v, want 0.0.0.0:9644", got)
		}
		if got := lookup(cfg, "node", "listen"); got != "0.0.0.0:9092" {
			t.Errorf("meshka.yaml node.listen %v, want 0.0.0.0:9092", got)
		}
		if adv, _ := lookup(cfg, "node", "advertise").(string); !strings.HasPrefix(adv, "${POD_NAME}."+headless.Metadata.Name+".") {
			t.Errorf("meshka.yaml node.advertise %q is not the pod's name under the headless Service", adv)
		}
		join, _ := lookup(cfg, "cluster", "join").([]any)
		if len(join) != 1 || !strings.HasPrefix(join[0].(string), headless.Metadata.Name+".") || !strings.HasSuffix(join[0].(string), ":7946") {
			t.Errorf("meshka.yaml cluster.join %v, want the headless Service %s at the gossip port", join, headless.Metadata.Name)
		}
		if lookup(cfg, "mqtt") != nil || lookup(cfg, "http") != nil {
			t.Errorf("meshka.yaml has an mqtt or http section while both are off:\n%s", r.config)
		}
		if n := len(r.kind("ServiceMonitor")); n != 0 {
			t.Errorf("%d ServiceMonitors with serviceMonitor.enabled false, want none", n)
		}
	})

	t.Run("MQTTAndHTTP", func(t *testing.T) {
		r := helm.template(t, "--set", "mqtt.enabled=true,http.enabled=true,mqtt.port=1884,http.port=8081")
		client := r.clientService(t)
		if !client.hasPort("mqtt", 1884, "TCP") || !client.hasPort("http", 8081, "TCP") {
			t.Errorf("client Service ports %+v lack mqtt 1884 and http 8081", client.Spec.Ports)
		}
		c := r.statefulSet(t).container(t)
		for _, name := range []string{"mqtt", "http"} {
			if !slices.ContainsFunc(c.Ports, func(cp containerPort) bool { return cp.Name == name }) {
				t.Errorf("container ports %+v lack %s", c.Ports, name)
			}
		}
		cfg := r.meshkaYAML(t)
		if got := lookup(cfg, "mqtt", "listen"); got != "0.0.0.0:1884" {
			t.Errorf("meshka.yaml mqtt.listen %v, want 0.0.0.0:1884", got)
		}
		if got := lookup(cfg, "http", "listen"); got != "0.0.0.0:8081" {
			t.Errorf("meshka.yaml http.listen %v, want 0.0.0.0:8081", got)
		}
	})

	t.Run("Config", func(t *testing.T) {
		r := helm.template(t, "--set", "upstream.brokers={kafka-0.kafka:9092,kafka-1.kafka:9092}",
			"--set", "config.cache.node_max_bytes=512MiB,config.http.confluent=true,http.enabled=true")
		cfg := r.meshkaYAML(t)
		if got := lookup(cfg, "cache", "node_max_bytes"); got != "512MiB" {
			t.Errorf("meshka.yaml cache.node_max_bytes %v, want config's 512MiB", got)
		}
		if lookup(cfg, "http", "confluent") != true || lookup(cfg, "http", "listen") != "0.0.0.0:8080" {
			t.Errorf("meshka.yaml http %v, want config's confluent beside the chart's listen", lookup(cfg, "http"))
		}
		if brokers, _ := lookup(cfg, "upstream", "brokers").([]any); len(brokers) != 2 {
			t.Errorf("meshka.yaml upstream.brokers %v, want the two set", brokers)
		}
	})

	t.Run("ServiceMonitor", func(t *testing.T) {
		r := helm.template(t, "--set", "serviceMonitor.enabled=true,serviceMonitor.labels.release=prometheus")
		sms := r.kind("ServiceMonitor")
		if len(sms) != 1 {
			t.Fatalf("%d ServiceMonitors with serviceMonitor.enabled, want 1", len(sms))
		}
		var sm struct {
			APIVersion string `yaml:"apiVersion"`
			Metadata   struct{ Labels map[string]string }
			Spec       struct {
				Selector struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				}
				Endpoints []struct{ Port, Path string }
			}
		}
		decodeNode(t, sms[0], &sm)
		if sm.APIVersion != "monitoring.coreos.com/v1" || sm.Metadata.Labels["release"] != "prometheus" {
			t.Errorf("ServiceMonitor %s with labels %v, want monitoring.coreos.com/v1 with release=prometheus", sm.APIVersion, sm.Metadata.Labels)
		}
		headless := r.headlessService(t)
		if !selects(sm.Spec.Selector.MatchLabels, headless.Metadata.Labels) || selects(sm.Spec.Selector.MatchLabels, r.clientService(t).Metadata.Labels) {
			t.Errorf("ServiceMonitor selects %v: want the headless Service (%v) alone", sm.Spec.Selector.MatchLabels, headless.Metadata.Labels)
		}
		if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "admin" || sm.Spec.Endpoints[0].Path != "/metrics" {
			t.Errorf("ServiceMonitor endpoints %+v, want /metrics on the admin port", sm.Spec.Endpoints)
		}
	})

	// meshka's own loader checks every key the chart writes (an unknown
	// one would stop the pods at start), with the environment the
	// StatefulSet gives the container.
	t.Run("MeshkaLoadsConfig", func(t *testing.T) {
		for _, set := range []string{"", "mqtt.enabled=true,http.enabled=true,config.http.confluent=true"} {
			var args []string
			if set != "" {
				args = []string{"--set", set}
			}
			r := helm.template(t, args...)
			path := filepath.Join(t.TempDir(), "meshka.yaml")
			if err := os.WriteFile(path, []byte(r.config), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("POD_NAME", "meshka-2")
			t.Setenv("POD_IP", "10.1.2.3")
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatalf("config.Load of the ConfigMap's meshka.yaml (%s): %v\n%s", set, err, r.config)
			}
			if errs := cfg.ValidateRun(); len(errs) > 0 {
				t.Fatalf("the ConfigMap's meshka.yaml (%s): %v", set, errs)
			}
			if cfg.Node.Advertise != "meshka-2.meshka-headless.default.svc.cluster.local:9092" || cfg.Cluster.AdvertiseBind != "10.1.2.3:7946" {
				t.Errorf("node.advertise %q and cluster.advertise_bind %q after the pod's environment", cfg.Node.Advertise, cfg.Cluster.AdvertiseBind)
			}
		}
	})
}

// helmCmd runs the helm built for this test from the repository root,
// with its own cache, configuration and data directories.
type helmCmd struct {
	bin, root string
	env       []string
}

// buildHelm builds helm once for the test into a temporary directory:
// minutes on a cold module and build cache, seconds after.
func buildHelm(t *testing.T) *helmCmd {
	t.Helper()
	if testing.Short() {
		t.Skip("builds helm " + helmVersion + " from source, which takes minutes the first time")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		missingTool(t, "go is not on PATH to build helm: %v", err)
	}
	dir := t.TempDir()
	ctx := timeout(t, 20*time.Minute)
	// go install pkg@version builds outside meshka's module: helm is not
	// in go.mod. Any -mod in GOFLAGS would not apply to it.
	build := exec.CommandContext(ctx, goBin, "install", "helm.sh/helm/v3/cmd/helm@"+helmVersion)
	build.Dir = dir
	build.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off", "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0")
	start := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		missingTool(t, "go install helm.sh/helm/v3/cmd/helm@%s: %v\n%s", helmVersion, err, out)
	}
	t.Logf("built helm %s in %v", helmVersion, time.Since(start).Round(time.Second))
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	return &helmCmd{
		bin:  filepath.Join(dir, "helm"),
		root: root,
		env: append(os.Environ(),
			"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
			"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
			"HELM_DATA_HOME="+filepath.Join(home, "data"),
		),
	}
}

func (h *helmCmd) run(args ...string) ([]byte, error) {
	cmd := exec.Command(h.bin, args...)
	cmd.Dir = h.root
	cmd.Env = h.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return append(out, stderr.Bytes()...), err
	}
	return out, nil
}

// rendered is what helm template printed: the documents by kind, and the
// ConfigMap's meshka.yaml.
type rendered struct {
	docs   map[string][]*yaml.Node
	config string
}

// template renders the chart as the release "meshka" in the namespace
// default, with extra arguments (--set ...).
func (h *helmCmd) template(t *testing.T, args ...string) *rendered {
	t.Helper()
	out, err := h.run(append([]string{"template", "meshka", chartDir}, args...)...)
	if err != nil {
		t.Fatalf("helm template %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	r := &rendered{docs: map[string][]*yaml.Node{}}
	for dec := yaml.NewDecoder(bytes.NewReader(out)); ; {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("helm template %s printed YAML that does not decode: %v\n%s", strings.Join(args, " "), err, out)
		}
		var head struct{ Kind string }
		decodeNode(t, &doc, &head)
		if head.Kind == "" {
			continue // a document of comments only
		}
		r.docs[head.Kind] = append(r.docs[head.Kind], &doc)
	}
	cms := r.kind("ConfigMap")
	if len(cms) != 1 {
		t.Fatalf("%d ConfigMaps, want 1", len(cms))
	}
	var cm struct{ Data map[string]string }
	decodeNode(t, cms[0], &cm)
	r.config = cm.Data["meshka.yaml"]
	if r.config == "" {
		t.Fatalf("the ConfigMap has no meshka.yaml: %v", cm.Data)
	}
	return r
}

func (r *rendered) kind(k string) []*yaml.Node { return r.docs[k] }

func decodeNode(t *testing.T, n *yaml.Node, v any) {
	t.Helper()
	if err := n.Decode(v); err != nil {
		t.Fatalf("decoding a rendered document into %T: %v", v, err)
	}
}

// meshkaYAML decodes the ConfigMap's meshka.yaml.
func (r *rendered) meshkaYAML(t *testing.T) map[string]any {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(r.config), &cfg); err != nil {
		t.Fatalf("the ConfigMap's meshka.yaml does not decode: %v\n%s", err, r.config)
	}
	return cfg
}

// lookup follows keys down nested mappings; nil when one is missing.
func lookup(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

type probe struct {
	HTTPGet *struct {
		Path string
		Port string
	} `yaml:"httpGet"`
}

type containerPort struct {
	Name          string
	ContainerPort int `yaml:"containerPort"`
	Protocol      string
}

type securityContext struct {
	RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
	RunAsUser                *int  `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
}

type container struct {
	Name string
	Args []string
	Env  []struct {
		Name      string
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	}
	Ports           []containerPort
	LivenessProbe   *probe           `yaml:"livenessProbe"`
	ReadinessProbe  *probe           `yaml:"readinessProbe"`
	SecurityContext *securityContext `yaml:"securityContext"`
}

type statefulSet struct {
	Spec struct {
		Replicas    int
		ServiceName string `yaml:"serviceName"`
		Selector    struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		}
		Template struct {
			Metadata struct{ Labels map[string]string }
			Spec     struct {
				SecurityContext *securityContext `yaml:"securityContext"`
				Containers      []container
			}
		}
	}
}

func (r *rendered) statefulSet(t *testing.T) *statefulSet {
	t.Helper()
	docs := r.kind("StatefulSet")
	if len(docs) != 1 {
		t.Fatalf("%d StatefulSets, want 1", len(docs))
	}
	var s statefulSet
	decodeNode(t, docs[0], &s)
	if !selects(s.Spec.Selector.MatchLabels, s.Spec.Template.Metadata.Labels) {
		t.Fatalf("the StatefulSet's selector %v does not select its pods %v", s.Spec.Selector.MatchLabels, s.Spec.Template.Metadata.Labels)
	}
	return &s
}

func (s *statefulSet) container(t *testing.T) *container {
	t.Helper()
	if n := len(s.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("%d containers, want 1", n)
	}
	return &s.Spec.Template.Spec.Containers[0]
}

// checkNodeID: --node-id is the pod's ordinal, from the label Kubernetes
// sets on every StatefulSet pod, as deploy/kubernetes/meshka.yaml does.
func checkNodeID(t *testing.T, c *container) {
	t.Helper()
	i := slices.Index(c.Args, "--node-id")
	if i < 0 || i+1 >= len(c.Args) || c.Args[i+1] != "$(POD_INDEX)" {
		t.Errorf("container args %q do not pass --node-id $(POD_INDEX)", c.Args)
	}
	if !slices.Contains(c.Args, "--config") || c.Args[0] != "run" {
		t.Errorf("container args %q are not run --config ...", c.Args)
	}
	for _, e := range c.Env {
		if e.Name == "POD_INDEX" {
			if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.labels['apps.kubernetes.io/pod-index']" {
				t.Errorf("POD_INDEX is not the pod-index label: %+v", e)
			}
			return
		}
	}
	t.Errorf("the container has no POD_INDEX")
}

func checkProbes(t *testing.T, c *container) {
	t.Helper()
	for _, p := range []struct {
		what  string
		probe *probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != "admin" {
			t.Errorf("%s probe %+v, want GET %s on the admin port", p.what, p.probe, p.path)
		}
	}
}

// checkSecurity: not root, and a read-only root file system.
func checkSecurity(t *testing.T, s *statefulSet) {
	t.Helper()
	pod, c := s.Spec.Template.Spec.SecurityContext, s.container(t).SecurityContext
	nonRoot := func(sc *securityContext) bool {
		return sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot && (sc.RunAsUser == nil || *sc.RunAsUser != 0)
	}
	if !nonRoot(pod) && !nonRoot(c) {
		t.Errorf("neither the pod's nor the container's securityContext sets runAsNonRoot")
	}
	if c == nil || c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem {
		t.Errorf("the container's root file system is not read-only")
	}
	if c == nil || c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
		t.Errorf("the container may escalate privileges")
	}
}

type service struct {
	Metadata struct {
		Name   string
		Labels map[string]string
	}
	Spec struct {
		ClusterIP                string            `yaml:"clusterIP"`
		PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
		Selector                 map[string]string `yaml:"selector"`
		Ports                    []struct {
			Name     string
			Port     int
			Protocol string
		}
	}
}

func (r *rendered) services(t *testing.T) []service {
	t.Helper()
	var out []service
	for _, n := range r.kind("Service") {
		var s service
		decodeNode(t, n, &s)
		out = append(out, s)
	}
	if len(out) != 2 {
		t.Fatalf("%d Services, want 2 (headless and client)", len(out))
	}
	return out
}

// headlessService is the one Service with clusterIP None; it must publish
// pods that are not ready, for nodes to join while they start.
func (r *rendered) headlessService(t *testing.T) *service {
	t.Helper()
	for _, s := range r.services(t) {
		if s.Spec.ClusterIP == "None" {
			if !s.Spec.PublishNotReadyAddresses {
				t.Errorf("the headless Service %s does not publish not-ready addresses", s.Metadata.Name)
			}
			return &s
		}
	}
	t.Fatal("no headless Service (clusterIP None)")
	return nil
}

func (r *rendered) clientService(t *testing.T) *service {
	t.Helper()
	for _, s := range r.services(t) {
		if s.Spec.ClusterIP != "None" {
			return &s
		}
	}
	t.Fatal("no client Service")
	return nil
}

func (s *service) hasPort(name string, port int, protocol string) bool {
	for _, p := range s.Spec.Ports {
		if p.Name == name && p.Port == port && p.Protocol == protocol {
			return true
		}
	}
	return false
}

// selects reports whether every label of sel is among labels.
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func sameLabels(a, b map[string]string) bool { return selects(a, b) && selects(b, a) }
