package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// load writes content to a file in a temporary directory and loads it, so
// the tests exercise the same path as `meshka --config`.
func load(t *testing.T, content string) (Config, Errors) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meshka.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err == nil {
		return cfg, nil
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load returned %T, want Errors: %v", err, err)
	}
	for _, e := range errs {
		if e.File != path {
			t.Errorf("error %q has file %q, want %q", e, e.File, path)
		}
	}
	return cfg, errs
}

func TestDefault(t *testing.T) {
	c := Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"node.id", c.Node.ID, int32(0)},
		{"node.listen", c.Node.Listen, "127.0.0.1:9092"},
		{"node.advertise", c.Node.Advertise, ""},
		{"cluster.name", c.Cluster.Name, "meshka"},
		{"cluster.bind", c.Cluster.Bind, "127.0.0.1:7946"},
		{"cluster.remote", c.Cluster.Remote, "127.0.0.1:0"},
		{"cluster.join", len(c.Cluster.Join), 0},
		{"cluster.probe_interval", c.Cluster.ProbeInterval.D(), time.Second},
		{"cluster.suspicion_timeout", c.Cluster.SuspicionTimeout.D(), 4 * time.Second},
		{"cluster.leave_timeout", c.Cluster.LeaveTimeout.D(), 2 * time.Second},
		{"dev.nodes", c.Dev.Nodes, 1},
		{"upstream.brokers", len(c.Upstream.Brokers), 0},
		{"upstream.client_id", c.Upstream.ClientID, "meshka"},
		{"upstream.request_timeout", c.Upstream.RequestTimeout.D(), 30 * time.Second},
		{"upstream.metadata_ttl", c.Upstream.MetadataTTL.D(), 10 * time.Second},
		{"upstream.produce_inflight", c.Upstream.ProduceInflight, 5},
		{"kafka.max_frame_bytes", c.Kafka.MaxFrameBytes, 100 * MiB},
		{"kafka.max_inflight_per_conn", c.Kafka.MaxInflightPerConn, 32},
		{"kafka.fetch_max_wait_cap", c.Kafka.FetchMaxWaitCap.D(), 30 * time.Second},
		{"kafka.shutdown_timeout", c.Kafka.ShutdownTimeout.D(), 10 * time.Second},
		{"kafka.idle_timeout", c.Kafka.IdleTimeout.D(), 10 * time.Minute},
		{"kafka.request_read_timeout", c.Kafka.RequestReadTimeout.D(), 30 * time.Second},
		{"kafka.write_timeout", c.Kafka.WriteTimeout.D(), 30 * time.Second},
		{"cache.partition_max_bytes", c.Cache.PartitionMaxBytes, 64 * MiB},
		{"cache.node_max_bytes", c.Cache.NodeMaxBytes, GiB},
		{"cache.idle_timeout", c.Cache.IdleTimeout.D(), 60 * time.Second},
		{"cache.bootstrap", len(c.Cache.Bootstrap), 0},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
		{"dev.data_dir", c.Dev.DataDir, "./.meshka-dev"},
		{"dev.brokers", c.Dev.Brokers, 3},
		{"dev.partitions", c.Dev.Partitions, int32(3)},
		{"AdvertiseAddr", c.AdvertiseAddr(), "127.0.0.1:9092"},
	}
	for _, tc := range checks {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if errs := c.Validate(); len(errs) != 0 {
		t.Errorf("defaults do not validate:\n%v", errs)
	}
}

func TestAdvertiseAddr(t *testing.T) {
	c := Default()
	c.Node.Advertise = "proxy.example.com:19092"
	if got := c.AdvertiseAddr(); got != "proxy.example.com:19092" {
		t.Errorf("AdvertiseAddr() = %q", got)
	}
}

const fullFile = `
node:
  id: 7
  listen: "0.0.0.0:19092"
  advertise: "proxy.example.com:9094"
cluster:
  name: edge
  bind: "10.0.0.5:6000"
  remote: "10.0.0.5:6001"
  join: ["seed-0.mesh:6000", "seed-1.mesh:6000"]
  advertise_bind: "203.0.113.5:16000"
  advertise_remote: "203.0.113.5:16001"
  probe_interval: 500ms
  suspicion_timeout: 3s
  leave_timeout: 1s
  gossip_keys: ["MTIzNDU2Nzg5MDEyMzQ1Ng=="]
  remote_tls:
    cert_file: /etc/meshka/node.pem
    key_file: /etc/meshka/node-key.pem
    ca_file: /etc/meshka/mesh-ca.pem
    server_name: mesh.internal
    min_version: "1.3"
    cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
upstream:
  brokers: ["k1:9092", "k2:9092"]
  client_id: edge-proxy
  request_timeout: 45s
  metadata_ttl: 250ms
  produce_inflight: 2
kafka:
  max_frame_bytes: 8 MiB
  max_inflight_per_conn: 64
  fetch_max_wait_cap: 2m
  shutdown_timeout: 0s
  max_connections: 5000
  max_connections_per_ip: 100
  idle_timeout: 0s
  request_read_timeout: 5s
  write_timeout: 1m
  max_request_memory: 64MiB
  max_response_memory: 2GiB
  listeners:
    - name: external
      listen: "0.0.0.0:19192"
      advertise: "proxy.example.com:9192"
      security_protocol: SASL_SSL
      tls:
        cert_file: /etc/meshka/server.pem
        key_file: /etc/meshka/server-key.pem
        ca_file: /etc/meshka/clients-ca.pem
        client_auth: requested
        min_version: "1.3"
      sasl_mechanisms: [SCRAM-SHA-512]
      principal_mapping_rules: ["RULE:^CN=(.*?),.*$/$1/L", DEFAULT]
cache:
  partition_max_bytes: 128MiB
  node_max_bytes: 4gib
  idle_timeout: 1h30m
  bootstrap:
    - orders
    - payments.v2
groups:
  initial_rebalance_delay: 3s
  min_session_timeout: 1s
  max_session_timeout: 10m
  max_size: 50
tables:
  max_bytes: 1GiB
mqtt:
  listen: 0.0.0.0:1883
  advertise: mqtt.example.com:1883
  websocket: 0.0.0.0:8083
  allow_anonymous: false
  max_packet_size: 256KiB
  max_connections: 20000
  max_inflight: 16
  max_queued_bytes: 4MiB
  max_keep_alive: 5m
  max_session_expiry: 24h
  topic_alias_maximum: 10
  qos0_acks: leader
  topics:
    messages: m
    retained: r
    sessions: s
    create: false
    partitions: 6
    replication: 3
  routes:
    - filter: "sensors/#"
      topic: sensors
http:
  listen: 0.0.0.0:8080
  advertise: api.example.com:443
  allow_anonymous: false
  cors_origins: ["https://app.example.com"]
  max_body_bytes: 64KiB
  read_header_timeout: 5s
  idle_timeout: 30s
  max_wait: 20s
  routes:
    - method: POST
      path: /events/{id}
      topic: events
      capability: produce
      key: "${params.id}"
      headers: {source: "${header.x-source}"}
      acks: leader
security:
  users:
    - name: alice
      scram_sha_512:
        salt: c2FsdA==
        iterations: 8192
        stored_key: c3RvcmVk
        server_key: c2VydmVy
  sasl:
    session_lifetime: 1h
log:
  level: debug
  format: json
dev:
  nodes: 3
  data_dir: /var/lib/meshka-dev
  brokers: 1
  partitions: 12
`

func fullConfig() Config {
	return Config{
		Node: Node{ID: 7, Listen: "0.0.0.0:19092", Advertise: "proxy.example.com:9094"},
		Cluster: Cluster{
			Name: "edge", Bind: "10.0.0.5:6000", Remote: "10.0.0.5:6001",
			Join:          []string{"seed-0.mesh:6000", "seed-1.mesh:6000"},
			AdvertiseBind: "203.0.113.5:16000", AdvertiseRemote: "203.0.113.5:16001",
			ProbeInterval: Duration(500 * time.Millisecond), SuspicionTimeout: Duration(3 * time.Second), LeaveTimeout: Duration(time.Second),
			GossipKeys: []string{"MTIzNDU2Nzg5MDEyMzQ1Ng=="},
			RemoteTLS: TLS{CertFile: "/etc/meshka/node.pem", KeyFile: "/etc/meshka/node-key.pem", CAFile: "/etc/meshka/mesh-ca.pem",
				ServerName: "mesh.internal", MinVersion: "1.3", CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}},
		},
		Upstream: Upstream{
			Brokers:         []string{"k1:9092", "k2:9092"},
			ClientID:        "edge-proxy",
			RequestTimeout:  Duration(45 * time.Second),
			MetadataTTL:     Duration(250 * time.Millisecond),
			ProduceInflight: 2,
		},
		Kafka: Kafka{
			MaxFrameBytes:       8 * MiB,
			MaxInflightPerConn:  64,
			FetchMaxWaitCap:     Duration(2 * time.Minute),
			ShutdownTimeout:     0,
			MaxConnections:      5000,
			MaxConnectionsPerIP: 100,
			IdleTimeout:         0,
			RequestReadTimeout:  Duration(5 * time.Second),
			WriteTimeout:        Duration(time.Minute),
			MaxRequestMemory:    64 * MiB,
			MaxResponseMemory:   2 * GiB,
			Listeners: []Listener{{Name: "external", Listen: "0.0.0.0:19192", Advertise: "proxy.example.com:9192",
				SecurityProtocol: SASLSSL, TLS: TLS{CertFile: "/etc/meshka/server.pem", KeyFile: "/etc/meshka/server-key.pem",
					CAFile: "/etc/meshka/clients-ca.pem", ClientAuth: "requested", MinVersion: "1.3"},
				SASLMechanisms: []string{"SCRAM-SHA-512"}, PrincipalMappingRules: []string{"RULE:^CN=(.*?),.*$/$1/L", "DEFAULT"}}},
		},
		Cache: Cache{
			PartitionMaxBytes: 128 * MiB,
			NodeMaxBytes:      4 * GiB,
			IdleTimeout:       Duration(90 * time.Minute),
			Bootstrap:         []string{"orders", "payments.v2"},
		},
		Groups: Groups{
			InitialRebalanceDelay: Duration(3 * time.Second),
			MinSessionTimeout:     Duration(time.Second),
			MaxSessionTimeout:     Duration(10 * time.Minute),
			MaxSize:               50,
		},
		Tables: Tables{MaxBytes: GiB},
		MQTT: MQTT{Listen: "0.0.0.0:1883", Advertise: "mqtt.example.com:1883", WebSocket: "0.0.0.0:8083",
			MaxPacketSize: 256 * KiB, MaxConnections: 20000, MaxInflight: 16, MaxQueuedBytes: 4 * MiB,
			MaxKeepAlive: Duration(5 * time.Minute), MaxSessionExpiry: Duration(24 * time.Hour), TopicAliasMaximum: 10,
			QoS0Acks: "leader", Topics: MQTTTopics{Messages: "m", Retained: "r", Sessions: "s", Partitions: 6, Replication: 3},
			Routes: []MQTTRoute{{Filter: "sensors/#", Topic: "sensors"}}},
		Admin: defaultAdmin(),
		HTTP: HTTP{Listen: "0.0.0.0:8080", Advertise: "api.example.com:443", CORSOrigins: []string{"https://app.example.com"},
			MaxBodyBytes: 64 * KiB, ReadHeaderTimeout: Duration(5 * time.Second), IdleTimeout: Duration(30 * time.Second),
			MaxWait: Duration(20 * time.Second), Consumers: defaultHTTP().Consumers, SchemaRegistry: defaultHTTP().SchemaRegistry, Routes: []HTTPRoute{{Method: "POST", Path: "/events/{id}", Topic: "events",
				Capability: "produce", Key: "${params.id}", Headers: map[string]string{"source": "${header.x-source}"}, Acks: "leader"}}},
		Security: Security{Users: []User{{Name: "alice", ScramSHA512: &ScramCredential{Salt: "c2FsdA==", Iterations: 8192,
			StoredKey: "c3RvcmVk", ServerKey: "c2VydmVy"}}}, SASL: SASLSettings{SessionLifetime: Duration(time.Hour)}},
		Log:    Log{Level: "debug", Format: "json"},
		Dev:    Dev{Nodes: 3, DataDir: "/var/lib/meshka-dev", Brokers: 1, Partitions: 12},
		Schema: defaultSchema(),
	}
}

func TestLoadFullFile(t *testing.T) {
	got, errs := load(t, fullFile)
	if errs != nil {
		t.Fatalf("unexpected errors:\n%v", errs)
	}
	if want := fullConfig(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}

	// Marshalling and loading again must give the same values, so a
	// config written out by tooling reads back unchanged.
	out, err := yaml.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"max_frame_bytes: 8MiB", "idle_timeout: 1h30m", "metadata_ttl: 250ms"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("marshalled config lacks %q:\n%s", want, out)
		}
	}
	again, errs := load(t, string(out))
	if errs != nil {
		t.Fatalf("marshalled config does not load:\n%v\n%s", errs, out)
	}
	if !reflect.DeepEqual(again, got) {
		t.Fatalf("round trip changed the config:\ngot  %+v\nwant %+v", again, got)
	}
}

func TestLoadPartialFileKeepsDefaults(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    func(*Config)
	}{
		{"empty file", "", func(*Config) {}},
		{"only comments", "# nothing here\n", func(*Config) {}},
		{"empty section", "kafka:\n", func(*Config) {}},
		{"null value keeps default", "node:\n  listen:\n", func(*Config) {}},
		{"one key", "kafka:\n  max_inflight_per_conn: 8\n", func(c *Config) { c.Kafka.MaxInflightPerConn = 8 }},
		{"two sections", "node:\n  id: 3\nlog:\n  format: json\n", func(c *Config) {
			c.Node.ID = 3
			c.Log.Format = "json"
		}},
		{"empty string is a value", "node:\n  advertise: \"\"\n", func(*Config) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := load(t, tc.content)
			if errs != nil {
				t.Fatalf("unexpected errors:\n%v", errs)
			}
			want := Default()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestExampleFileShowsTheDefaults holds meshka.example.yaml to its promise:
// every key, each with its default value.
func TestExampleFileShowsTheDefaults(t *testing.T) {
	const path = "../meshka.example.yaml"
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("%s:\n%v", path, err)
	}
	// The example writes empty lists as [], which decodes to an empty
	// slice where Default has nil; both mean none.
	if len(cfg.Upstream.Brokers) == 0 {
		cfg.Upstream.Brokers = nil
	}
	if len(cfg.Cache.Bootstrap) == 0 {
		cfg.Cache.Bootstrap = nil
	}
	if len(cfg.Cluster.Join) == 0 {
		cfg.Cluster.Join = nil
	}
	if len(cfg.Cluster.GossipKeys) == 0 {
		cfg.Cluster.GossipKeys = nil
	}
	if len(cfg.Cluster.RemoteTLS.CipherSuites) == 0 {
		cfg.Cluster.RemoteTLS.CipherSuites = nil
	}
	if len(cfg.Bindings) == 0 {
		cfg.Bindings = nil
	}
	if len(cfg.Topics) == 0 {
		cfg.Topics = nil
	}
	if len(cfg.Kafka.Listeners) == 0 {
		cfg.Kafka.Listeners = nil
	}
	if len(cfg.MQTT.Routes) == 0 {
		cfg.MQTT.Routes = nil
	}
	if len(cfg.HTTP.Routes) == 0 {
		cfg.HTTP.Routes = nil
	}

	if len(cfg.HTTP.CORSOrigins) == 0 {
		cfg.HTTP.CORSOrigins = nil
	}
	if len(cfg.Security.Users) == 0 {
		cfg.Security.Users = nil
	}
	if len(cfg.Security.SuperUsers) == 0 {
		cfg.Security.SuperUsers = nil
	}
	if len(cfg.Security.ACLs.Rules) == 0 {
		cfg.Security.ACLs.Rules = nil
	}
	if want := Default(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("%s no longer shows the defaults:\ngot  %+v\nwant %+v", path, cfg, want)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
			path := join(prefix, n.Content[i].Value)
			written[path] = true
			walk(n.Content[i+1], path)
		}
	}
	walk(root.Content[0], "")
	for key := range leafKeys(reflect.TypeFor[Config](), "") {
		if !written[key] {
			t.Errorf("%s does not show %s", path, key)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil {
		t.Fatal("expected an error")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) = false for %v", err)
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Errorf("want one Errors entry, got %#v", err)
	}
}

func TestErrorRendering(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "m.yaml", Line: 3, Column: 5, Path: "node.id", Msg: "bad"}, "m.yaml:3:5: node.id: bad"},
		{Error{File: "m.yaml", Line: 3, Msg: "invalid YAML"}, "m.yaml:3: invalid YAML"},
		{Error{File: "m.yaml", Path: "node.id", Msg: "bad"}, "m.yaml: node.id: bad"},
		{Error{Path: "node.id", Msg: "bad"}, "node.id: bad"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	es := Errors{tests[0].err, tests[3].err}
	if got, want := es.Error(), "m.yaml:3:5: node.id: bad\nnode.id: bad"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
	if Errors(nil).Err() != nil {
		t.Error("empty Errors.Err() must be nil")
	}
}

// A value schema's version as conversion reads it: a number, else
// latest, which is validate.Latest's -1.
func TestValueSchemaPinned(t *testing.T) {
	for v, want := range map[string]int{"": -1, "latest": -1, "3": 3} {
		if got := (HTTPValueSchema{Subject: "s", Version: v}).Pinned(); got != want {
			t.Errorf("version %q: %d, want %d", v, got, want)
		}
	}
}
