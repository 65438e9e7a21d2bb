package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		path   string // "" means valid
		msg    string
	}{
		{"defaults", func(*Config) {}, "", ""},
		{"mqtt route filter", func(c *Config) { c.MQTT.Routes = []MQTTRoute{{Filter: "a/#/b", Topic: "t"}} }, "mqtt.routes[0].filter", "'#' must be the last level"},
		{"mqtt route to the sessions topic", func(c *Config) { c.MQTT.Routes = []MQTTRoute{{Filter: "a/#", Topic: "mqtt-sessions"}} }, "mqtt.routes[0].topic", "must not be the retained or sessions topic"},
		{"mqtt route converting (the registry is the node's to check, at start)", func(c *Config) {
			c.MQTT.Routes = []MQTTRoute{{Filter: "a/#", Topic: "t", ValueFormat: "json", ValueSchema: &HTTPValueSchema{Subject: "t-value"}}}
		}, "", ""},
		{"mqtt route converting without a schema", func(c *Config) {
			c.HTTP.SchemaRegistry.Enabled = true
			c.MQTT.Routes = []MQTTRoute{{Filter: "a/#", Topic: "t", ValueFormat: "json"}}
		}, "mqtt.routes[0].value_format", "needs value_schema"},
		{"mqtt route format", func(c *Config) {
			c.HTTP.SchemaRegistry.Enabled = true
			c.MQTT.Routes = []MQTTRoute{{Filter: "a/#", Topic: "t", ValueFormat: "avro"}}
		}, "mqtt.routes[0].value_format", "must be json"},
		{"mqtt routes disagreeing", func(c *Config) {
			c.HTTP.SchemaRegistry.Enabled = true
			c.MQTT.Routes = []MQTTRoute{{Filter: "a/#", Topic: "t", ValueFormat: "json", ValueSchema: &HTTPValueSchema{Subject: "s"}}, {Filter: "b/#", Topic: "t"}}
		}, "mqtt.routes[1].value_format", "must agree on value_format"},
		{"mqtt route schema version", func(c *Config) {
			c.HTTP.SchemaRegistry.Enabled = true
			c.MQTT.Routes = []MQTTRoute{{Filter: "a/#", Topic: "t", ValueFormat: "json", ValueSchema: &HTTPValueSchema{Subject: "s", Version: "x"}}}
		}, "mqtt.routes[0].value_schema.version", ""},
		{"mqtt topics the same", func(c *Config) { c.MQTT.Topics.Retained = "mqtt-messages" }, "mqtt.topics.retained", "must differ from mqtt.topics.messages"},
		{"http route ok", func(c *Config) {
			c.HTTP.Routes = []HTTPRoute{{Method: "POST", Path: "/e/{id}", Topic: "e", Capability: "produce", Key: "${params.id}"}}
		}, "", ""},
		{"http route unknown param", func(c *Config) {
			c.HTTP.Routes = []HTTPRoute{{Method: "POST", Path: "/e/{id}", Topic: "e", Capability: "produce", Key: "${params.nope}"}}
		}, "http.routes[0].key", `${params.nope}: the path "/e/{id}" has no {nope}`},
		{"http route bad expression", func(c *Config) {
			c.HTTP.Routes = []HTTPRoute{{Method: "POST", Path: "/e", Topic: "e", Capability: "produce", Headers: map[string]string{"h": "${who}"}}}
		}, "http.routes[0].headers.h", "want ${params.<name>} or ${header.<name>}"},
		{"http route path", func(c *Config) {
			c.HTTP.Routes = []HTTPRoute{{Method: "GET", Path: "/e/x{id}", Topic: "e", Capability: "fetch"}}
		}, "http.routes[0].path", "a parameter must be a whole segment"},
		{"http fetch with POST", func(c *Config) {
			c.HTTP.Routes = []HTTPRoute{{Method: "POST", Path: "/e", Topic: "e", Capability: "fetch"}}
		}, "http.routes[0].method", "a fetch route is read with GET"},
		{"http capability", func(c *Config) {
			c.HTTP.Routes = []HTTPRoute{{Method: "GET", Path: "/e", Topic: "e", Capability: "teleport"}}
		}, "http.routes[0].capability", "must be one of produce, fetch, item, stream, websocket, request"},
		{"node.id negative", func(c *Config) { c.Node.ID = -1 }, "node.id", "must be between 0 and 2147483647, got -1"},
		{"node.id max", func(c *Config) { c.Node.ID = 2147483647 }, "", ""},
		{"listen empty host", func(c *Config) { c.Node.Listen = ":9092" }, "node.listen", "listens on all interfaces (empty host); set node.advertise"},
		{"listen 0.0.0.0", func(c *Config) { c.Node.Listen = "0.0.0.0:9092" }, "node.listen", "listens on all interfaces (0.0.0.0); set node.advertise (or --advertise) to the host:port clients should connect to"},
		{"listen [::]", func(c *Config) { c.Node.Listen = "[::]:9092" }, "node.listen", "listens on all interfaces (::)"},
		{"listen 0.0.0.0 advertised", func(c *Config) {
			c.Node.Listen = "0.0.0.0:9092"
			c.Node.Advertise = "proxy.example.com:9092"
		}, "", ""},
		{"listen empty host advertised", func(c *Config) {
			c.Node.Listen = ":0"
			c.Node.Advertise = "proxy.example.com:0"
		}, "", ""},
		{"listen wildcard with a bad port is one error", func(c *Config) { c.Node.Listen = "0.0.0.0:x" }, "node.listen", "port must be a number"},
		{"listen named host", func(c *Config) { c.Node.Listen = "localhost:9092" }, "", ""},
		{"listen ipv6", func(c *Config) { c.Node.Listen = "[::1]:9092" }, "", ""},
		{"listen port 0", func(c *Config) { c.Node.Listen = "127.0.0.1:0" }, "", ""},
		{"listen no port", func(c *Config) { c.Node.Listen = "127.0.0.1" }, "node.listen", `must be host:port, e.g. "127.0.0.1:9092", got "127.0.0.1"`},
		{"listen empty port", func(c *Config) { c.Node.Listen = "127.0.0.1:" }, "node.listen", `must include a port, got "127.0.0.1:"`},
		{"listen named port", func(c *Config) { c.Node.Listen = "127.0.0.1:kafka" }, "node.listen", `port must be a number between 0 and 65535, got "kafka"`},
		{"listen port too big", func(c *Config) { c.Node.Listen = "127.0.0.1:65536" }, "node.listen", "between 0 and 65535"},
		{"listen signed port", func(c *Config) { c.Node.Listen = "127.0.0.1:+80" }, "node.listen", "between 0 and 65535"},
		{"listen empty", func(c *Config) { c.Node.Listen = "" }, "node.listen", "must be host:port"},
		{"advertise ok", func(c *Config) { c.Node.Advertise = "proxy.example.com:9092" }, "", ""},
		{"advertise no host", func(c *Config) { c.Node.Advertise = ":9092" }, "node.advertise", "must name a host"},
		{"advertise empty port", func(c *Config) { c.Node.Advertise = "proxy:" }, "node.advertise", "must include a port"},
		{"advertise port 0", func(c *Config) { c.Node.Advertise = "proxy:0" }, "", ""},
		{"advertise port too big", func(c *Config) { c.Node.Advertise = "proxy:70000" }, "node.advertise", "between 0 and 65535"},
		{"broker port 0", func(c *Config) { c.Upstream.Brokers = []string{"k:0"} }, "upstream.brokers[0]", "between 1 and 65535"},
		{"cluster name empty", func(c *Config) { c.Cluster.Name = " " }, "cluster.name", "must not be empty"},
		{"cluster bind empty port", func(c *Config) { c.Cluster.Bind = "10.0.0.1:" }, "cluster.bind", "must include a port"},
		{"cluster remote on all interfaces", func(c *Config) { c.Cluster.Remote = "0.0.0.0:0" }, "cluster.remote", "set cluster.advertise_remote"},
		{"cluster remote advertised", func(c *Config) { c.Cluster.Remote, c.Cluster.AdvertiseRemote = "0.0.0.0:0", "node-1.mesh:8090" }, "", ""},
		{"cluster join no port", func(c *Config) { c.Cluster.Join = []string{"seed"} }, "cluster.join[0]", "must be host:port"},
		{"cluster suspicion below probe", func(c *Config) { c.Cluster.SuspicionTimeout = Duration(time.Millisecond * 500) }, "cluster.suspicion_timeout", "must be at least cluster.probe_interval"},
		{"dev nodes too many", func(c *Config) { c.Dev.Nodes = 10 }, "dev.nodes", "between 1 and 9"},
		{"cluster bind bad", func(c *Config) { c.Cluster.Bind = "10.0.0.1" }, "cluster.bind", "must be host:port"},
		{"cluster bind named host", func(c *Config) { c.Cluster.Bind = "localhost:7946" }, "cluster.bind", `must be an IP address and port, e.g. "10.0.0.1:7946" (gossip uses addresses, not names), got "localhost:7946"`},
		{"cluster bind ipv6", func(c *Config) { c.Cluster.Bind = "[fd00::1]:7946" }, "", ""},
		{"cluster bind 0.0.0.0", func(c *Config) { c.Cluster.Bind = "0.0.0.0:7946" }, "", ""},
		{"cluster bind [::]", func(c *Config) { c.Cluster.Bind = "[::]:7946" }, "cluster.bind", "listens on all interfaces (::); use 0.0.0.0, or set cluster.advertise_bind"},
		{"cluster bind empty host", func(c *Config) { c.Cluster.Bind = ":7946" }, "cluster.bind", "listens on all interfaces (empty host)"},
		{"cluster bind [::] advertised", func(c *Config) { c.Cluster.Bind, c.Cluster.AdvertiseBind = "[::]:7946", "[fd00::1]:7946" }, "", ""},
		{"cluster advertise_bind ip", func(c *Config) { c.Cluster.Bind, c.Cluster.AdvertiseBind = "0.0.0.0:7946", "10.1.2.3:7946" }, "", ""},
		{"cluster advertise_bind named host", func(c *Config) { c.Cluster.AdvertiseBind = "meshka-0.meshka:7946" }, "cluster.advertise_bind", "must be an IP address and port"},
		{"cluster advertise_bind no host", func(c *Config) { c.Cluster.AdvertiseBind = ":7946" }, "cluster.advertise_bind", "must name a host"},
		{"cluster advertise_bind port 0", func(c *Config) { c.Cluster.AdvertiseBind = "10.1.2.3:0" }, "cluster.advertise_bind", "between 1 and 65535"},
		{"cluster join named host", func(c *Config) { c.Cluster.Join = []string{"meshka.default.svc.cluster.local:7946"} }, "", ""},
		{"broker ok", func(c *Config) { c.Upstream.Brokers = []string{"k1:9092", "[fe80::1]:9093"} }, "", ""},
		{"broker bad", func(c *Config) { c.Upstream.Brokers = []string{"k1:9092", "k2"} }, "upstream.brokers[1]", "must be host:port"},
		{"broker no host", func(c *Config) { c.Upstream.Brokers = []string{":9092"} }, "upstream.brokers[0]", "must name a host"},
		{"client id too long", func(c *Config) { c.Upstream.ClientID = strings.Repeat("x", 40000) }, "upstream.client_id", "at most 32767 bytes"},
		{"request timeout low", func(c *Config) { c.Upstream.RequestTimeout = Duration(999 * time.Millisecond) }, "upstream.request_timeout", "must be between 1s and 10m, got 999ms"},
		{"request timeout high", func(c *Config) { c.Upstream.RequestTimeout = Duration(11 * time.Minute) }, "upstream.request_timeout", "got 11m"},
		{"metadata ttl low", func(c *Config) { c.Upstream.MetadataTTL = Duration(99 * time.Millisecond) }, "upstream.metadata_ttl", "must be between 100ms and 1h, got 99ms"},
		{"metadata ttl edge", func(c *Config) { c.Upstream.MetadataTTL = Duration(time.Hour) }, "", ""},
		{"frame small", func(c *Config) { c.Kafka.MaxFrameBytes = 1023 }, "kafka.max_frame_bytes", "must be between 1KiB and 1GiB, got 1023B"},
		{"frame big", func(c *Config) { c.Kafka.MaxFrameBytes, c.Kafka.MaxRequestMemory = GiB+1, 2*GiB }, "kafka.max_frame_bytes", "got 1073741825B"},
		{"request memory below a frame", func(c *Config) { c.Kafka.MaxRequestMemory = 50 * MiB }, "kafka.max_request_memory", "must be at least kafka.max_frame_bytes (100MiB), got 50MiB"},
		{"max session below min", func(c *Config) {
			c.Groups.MinSessionTimeout, c.Groups.MaxSessionTimeout = Duration(10*time.Second), Duration(9*time.Second)
		}, "groups.max_session_timeout", "must be at least groups.min_session_timeout (10s), got 9s"},
		{"max session equal to min", func(c *Config) {
			c.Groups.MinSessionTimeout, c.Groups.MaxSessionTimeout = Duration(10*time.Second), Duration(10*time.Second)
		}, "", ""},
		{"read timeout zero", func(c *Config) { c.Kafka.RequestReadTimeout = 0 }, "kafka.request_read_timeout", "must be between 1s and 10m"},
		{"per-ip negative", func(c *Config) { c.Kafka.MaxConnectionsPerIP = -1 }, "kafka.max_connections_per_ip", "must be between 0 and 16777216"},
		{"inflight zero", func(c *Config) { c.Kafka.MaxInflightPerConn = 0 }, "kafka.max_inflight_per_conn", "must be between 1 and 1024, got 0"},
		{"produce inflight above Kafka's 5", func(c *Config) { c.Upstream.ProduceInflight = 6 }, "upstream.produce_inflight", "must be between 1 and 5, got 6"},
		{"inflight max", func(c *Config) { c.Kafka.MaxInflightPerConn = 1024 }, "", ""},
		{"fetch wait zero", func(c *Config) { c.Kafka.FetchMaxWaitCap = 0 }, "", ""},
		{"fetch wait negative", func(c *Config) { c.Kafka.FetchMaxWaitCap = Duration(-time.Second) }, "kafka.fetch_max_wait_cap", "must be between 0s and 5m, got -1s"},
		{"shutdown high", func(c *Config) { c.Kafka.ShutdownTimeout = Duration(time.Hour) }, "kafka.shutdown_timeout", "must be between 0s and 10m, got 1h"},
		{"partition small", func(c *Config) { c.Cache.PartitionMaxBytes = 32 * KiB }, "cache.partition_max_bytes", "must be between 64KiB and 64GiB, got 32KiB"},
		{"partition big", func(c *Config) {
			c.Cache.PartitionMaxBytes = 65 * GiB
			c.Cache.NodeMaxBytes = 100 * GiB
		}, "cache.partition_max_bytes", "got 65GiB"},
		{"node below partition", func(c *Config) { c.Cache.NodeMaxBytes = 32 * MiB }, "cache.node_max_bytes", "must be at least cache.partition_max_bytes (64MiB), got 32MiB"},
		{"node equal partition", func(c *Config) { c.Cache.NodeMaxBytes = 64 * MiB }, "", ""},
		{"idle low", func(c *Config) { c.Cache.IdleTimeout = 0 }, "cache.idle_timeout", "must be between 1s and 24h, got 0s"},
		{"topics ok", func(c *Config) { c.Cache.Bootstrap = []string{"a", "A.b_c-9", strings.Repeat("t", 249)} }, "", ""},
		{"topic empty", func(c *Config) { c.Cache.Bootstrap = []string{"a", ""} }, "cache.bootstrap[1]", "must not be empty"},
		{"topic long", func(c *Config) { c.Cache.Bootstrap = []string{strings.Repeat("t", 250)} }, "cache.bootstrap[0]", "at most 249 characters, got 250"},
		{"topic chars", func(c *Config) { c.Cache.Bootstrap = []string{"orders/eu"} }, "cache.bootstrap[0]", `invalid topic name "orders/eu"`},
		{"topic unicode", func(c *Config) { c.Cache.Bootstrap = []string{"ordrés"} }, "cache.bootstrap[0]", "invalid topic name"},
		{"topic dot", func(c *Config) { c.Cache.Bootstrap = []string{".."} }, "cache.bootstrap[0]", "not allowed"},
		{"topic duplicate", func(c *Config) { c.Cache.Bootstrap = []string{"a", "b", "a"} }, "cache.bootstrap[2]", `duplicate topic "a" (also cache.bootstrap[0])`},
		{"log level", func(c *Config) { c.Log.Level = "INFO" }, "log.level", `must be one of debug, info, warn, error; got "INFO"`},
		{"log format", func(c *Config) { c.Log.Format = "logfmt" }, "log.format", `must be one of text, json; got "logfmt"`},
		{"dev data dir", func(c *Config) { c.Dev.DataDir = "" }, "dev.data_dir", "must not be empty"},
		{"dev brokers", func(c *Config) { c.Dev.Brokers = 10 }, "dev.brokers", "must be between 1 and 9, got 10"},
		{"dev partitions", func(c *Config) { c.Dev.Partitions = 0 }, "dev.partitions", "must be between 1 and 1000, got 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.modify(&c)
			errs := c.Validate()
			if tc.path == "" {
				if len(errs) != 0 {
					t.Fatalf("unexpected errors:\n%v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Path != tc.path || !strings.Contains(errs[0].Msg, tc.msg) || errs[0].Line != 0 {
				t.Fatalf("got errors:\n%v\nwant one at %s containing %q", errs, tc.path, tc.msg)
			}
		})
	}
}

func TestValidateReportsAll(t *testing.T) {
	c := Default()
	c.Node.ID = -1
	c.Kafka.MaxInflightPerConn = 0
	c.Log.Level = "loud"
	errs := c.Validate()
	if len(errs) != 3 {
		t.Fatalf("want 3 errors, got:\n%v", errs)
	}
	want := "node.id: must be between 0 and 2147483647, got -1\n" +
		"kafka.max_inflight_per_conn: must be between 1 and 1024, got 0\n" +
		`log.level: must be one of debug, info, warn, error; got "loud"`
	if errs.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", errs.Error(), want)
	}
}

func TestValidateRun(t *testing.T) {
	c := Default()
	if errs := c.ValidateRun(); len(errs) != 1 || errs[0].Path != "upstream.brokers" {
		t.Fatalf("want a missing-brokers error, got %v", errs)
	}
	c.Upstream.Brokers = []string{"k:9092"}
	if errs := c.ValidateRun(); len(errs) != 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
}

// TestEveryIntegerKeyHasARange keeps intRanges complete: a key missing from
// it would be told its Go type's limits when a value overflows the type,
// and a different range when validation rejects a smaller value.
func TestEveryIntegerKeyHasARange(t *testing.T) {
	keys := leafKeys(reflect.TypeFor[Config](), "")
	for path, typ := range keys {
		switch typ.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		default:
			continue
		}
		if reflect.PointerTo(typ).Implements(unmarshalerType) {
			continue // Duration and Size parse themselves
		}
		if _, ok := intRanges[path]; !ok {
			t.Errorf("integer key %s has no entry in intRanges", path)
		}
	}
	for path := range intRanges {
		if _, ok := keys[path]; !ok {
			t.Errorf("intRanges names %s, which is not a key", path)
		}
	}
}

// leafKeys maps the dotted path of every key that holds a value, not a
// section, to its Go type.
func leafKeys(t reflect.Type, prefix string) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for _, f := range fields(t) {
		path := join(prefix, f.name)
		ft := t.Field(f.index).Type
		if ft.Kind() == reflect.Struct {
			for p, lt := range leafKeys(ft, path) {
				out[p] = lt
			}
			continue
		}
		out[path] = ft
	}
	return out
}
