package config

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks ranges and formats. It needs no file positions, so it can
// run again after command-line flags have overridden fields; its errors then
// have Line 0. It does not require upstream.brokers, which `meshka dev`
// does without; see ValidateRun.
func (c *Config) Validate() Errors {
	var v validator

	v.intRange("node.id", int64(c.Node.ID))
	listenOK := v.hostPort("node.listen", c.Node.Listen, addrRules{})
	if c.Node.Advertise != "" {
		// Clients dial this address, so it needs a real host. Port 0 stays
		// allowed: it stands for whatever port the listener was given.
		v.hostPort("node.advertise", c.Node.Advertise, addrRules{needHost: true})
	} else if what := allInterfaces(c.Node.Listen); listenOK && what != "" {
		// Without an advertised address clients are told the listen
		// address, and 0.0.0.0 or an empty host is not one they can dial.
		v.add("node.listen", "listens on all interfaces (%s); set node.advertise (or --advertise) to the host:port clients should connect to", what)
	}

	v.validateListeners(c)

	v.nonEmpty("cluster.name", c.Cluster.Name)
	// memberlist binds and advertises IP addresses only: it binds a name
	// (or an empty host) on every interface and advertises that as "::",
	// and it refuses a name to advertise. Of the wildcards, only 0.0.0.0
	// makes it advertise a private address of the machine.
	if v.hostPort("cluster.bind", c.Cluster.Bind, addrRules{needIP: true}) && c.Cluster.AdvertiseBind == "" {
		if what := allInterfaces(c.Cluster.Bind); what != "" && what != "0.0.0.0" {
			v.add("cluster.bind", "listens on all interfaces (%s); use 0.0.0.0, or set cluster.advertise_bind to the IP address and port other nodes should dial", what)
		}
	}
	remoteOK := c.Cluster.Remote == "" || v.hostPort("cluster.remote", c.Cluster.Remote, addrRules{})
	if c.Cluster.AdvertiseBind != "" {
		v.hostPort("cluster.advertise_bind", c.Cluster.AdvertiseBind, addrRules{needHost: true, needIP: true, noZeroPort: true})
	}
	if c.Cluster.AdvertiseRemote != "" {
		v.hostPort("cluster.advertise_remote", c.Cluster.AdvertiseRemote, addrRules{needHost: true, noZeroPort: true})
	} else if what := allInterfaces(c.Cluster.Remote); remoteOK && what != "" {
		v.add("cluster.remote", "listens on all interfaces (%s); set cluster.advertise_remote to the host:port other nodes should dial", what)
	}
	for i, j := range c.Cluster.Join {
		v.hostPort(fmt.Sprintf("cluster.join[%d]", i), j, addrRules{needHost: true, noZeroPort: true})
	}
	v.durationRange("cluster.probe_interval", c.Cluster.ProbeInterval, 10*time.Millisecond, time.Minute)
	v.durationRange("cluster.suspicion_timeout", c.Cluster.SuspicionTimeout, 10*time.Millisecond, 10*time.Minute)
	if c.Cluster.SuspicionTimeout < c.Cluster.ProbeInterval {
		v.add("cluster.suspicion_timeout", "must be at least cluster.probe_interval (%s), got %s", c.Cluster.ProbeInterval, c.Cluster.SuspicionTimeout)
	}
	v.durationRange("cluster.leave_timeout", c.Cluster.LeaveTimeout, 0, time.Minute)
	v.validateMeshSecurity(c.Cluster)

	for i, b := range c.Upstream.Brokers {
		v.hostPort(fmt.Sprintf("upstream.brokers[%d]", i), b, addrRules{needHost: true, noZeroPort: true})
	}
	// The Kafka protocol encodes the client id with an int16 length.
	if len(c.Upstream.ClientID) > math.MaxInt16 {
		v.add("upstream.client_id", "must be at most %d bytes long, got %d", math.MaxInt16, len(c.Upstream.ClientID))
	}
	v.durationRange("upstream.request_timeout", c.Upstream.RequestTimeout, time.Second, 10*time.Minute)
	v.durationRange("upstream.metadata_ttl", c.Upstream.MetadataTTL, 100*time.Millisecond, time.Hour)
	v.intRange("upstream.produce_inflight", int64(c.Upstream.ProduceInflight))
	if c.Upstream.TLS != nil {
		v.validateTLS("upstream.tls", *c.Upstream.TLS, false)
	}
	if c.Upstream.SASL != nil {
		v.validateSASL("upstream.sasl", *c.Upstream.SASL)
	}

	v.sizeRange("kafka.max_frame_bytes", c.Kafka.MaxFrameBytes, KiB, GiB)
	v.intRange("kafka.max_inflight_per_conn", int64(c.Kafka.MaxInflightPerConn))
	v.durationRange("kafka.fetch_max_wait_cap", c.Kafka.FetchMaxWaitCap, 0, 5*time.Minute)
	v.durationRange("kafka.shutdown_timeout", c.Kafka.ShutdownTimeout, 0, 10*time.Minute)
	v.intRange("kafka.max_connections", int64(c.Kafka.MaxConnections))
	v.intRange("kafka.max_connections_per_ip", int64(c.Kafka.MaxConnectionsPerIP))
	v.durationRange("kafka.idle_timeout", c.Kafka.IdleTimeout, 0, 24*time.Hour)
	v.durationRange("kafka.request_read_timeout", c.Kafka.RequestReadTimeout, time.Second, 10*time.Minute)
	v.durationRange("kafka.write_timeout", c.Kafka.WriteTimeout, time.Second, 10*time.Minute)
	v.sizeRange("kafka.max_request_memory", c.Kafka.MaxRequestMemory, MiB, 1024*GiB)
	if c.Kafka.MaxRequestMemory < c.Kafka.MaxFrameBytes {
		// A request larger than the whole budget could never be read.
		v.add("kafka.max_request_memory", "must be at least kafka.max_frame_bytes (%s), got %s",
			c.Kafka.MaxFrameBytes, c.Kafka.MaxRequestMemory)
	}
	v.sizeRange("kafka.max_response_memory", c.Kafka.MaxResponseMemory, MiB, 1024*GiB)

	v.sizeRange("cache.partition_max_bytes", c.Cache.PartitionMaxBytes, 64*KiB, 64*GiB)
	if c.Cache.NodeMaxBytes < c.Cache.PartitionMaxBytes {
		v.add("cache.node_max_bytes", "must be at least cache.partition_max_bytes (%s), got %s",
			c.Cache.PartitionMaxBytes, c.Cache.NodeMaxBytes)
	}
	v.durationRange("cache.idle_timeout", c.Cache.IdleTimeout, time.Second, 24*time.Hour)

	v.durationRange("groups.initial_rebalance_delay", c.Groups.InitialRebalanceDelay, 0, 5*time.Minute)
	v.durationRange("groups.min_session_timeout", c.Groups.MinSessionTimeout, time.Millisecond, time.Hour)
	v.durationRange("groups.max_session_timeout", c.Groups.MaxSessionTimeout, time.Millisecond, 24*time.Hour)
	if c.Groups.MaxSessionTimeout < c.Groups.MinSessionTimeout {
		v.add("groups.max_session_timeout", "must be at least groups.min_session_timeout (%s), got %s",
			c.Groups.MinSessionTimeout, c.Groups.MaxSessionTimeout)
	}
	v.intRange("groups.max_size", int64(c.Groups.MaxSize))
	v.sizeRange("tables.max_bytes", c.Tables.MaxBytes, KiB, TiB)
	v.validateMQTT(c.MQTT)
	v.validateHTTP(c.HTTP)
	v.validateAdmin(c.Admin)
	v.validateTopics(c.Topics)
	v.validateSchema(c.Schema, c.HTTP.SchemaRegistry.Enabled)
	first := map[string]int{}
	for i, topic := range c.Cache.Bootstrap {
		path := fmt.Sprintf("cache.bootstrap[%d]", i)
		if msg := checkTopic(topic); msg != "" {
			v.add(path, "%s", msg)
			continue
		}
		if j, dup := first[topic]; dup {
			v.add(path, "duplicate topic %q (also cache.bootstrap[%d])", topic, j)
			continue
		}
		first[topic] = i
	}

	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")

	v.intRange("dev.nodes", int64(c.Dev.Nodes))
	v.nonEmpty("dev.data_dir", c.Dev.DataDir)
	v.intRange("dev.brokers", int64(c.Dev.Brokers))
	v.intRange("dev.partitions", int64(c.Dev.Partitions))

	// What is in a binding's section is the binding's to check, at node
	// start; a name, though, is needed to find the binding.
	if _, ok := c.Bindings[""]; ok {
		v.add("bindings", "a binding name must not be empty")
	}

	return v.errs
}

// HasSchemaRegistry says whether the node has a schema registry to read
// schemas from: the built-in one (http.schema_registry) or an external
// one (schema.registry.url).
func (c *Config) HasSchemaRegistry() bool {
	return c.HTTP.SchemaRegistry.Enabled || c.HasExternalSchemaRegistry()
}

// ValidateRun is Validate plus what only `meshka run` needs: an upstream to
// proxy to.
func (c *Config) ValidateRun() Errors {
	errs := c.Validate()
	if len(c.Upstream.Brokers) == 0 {
		errs = append(errs, Error{Path: "upstream.brokers",
			Msg: "at least one broker is required (set upstream.brokers or --upstream)"})
	}
	return errs
}

// intRanges bounds every integer key. The decoder reads it too, so a number
// too large for the key's Go type gets the key's own range in its message,
// the same as a number that merely fails validation.
var intRanges = map[string]struct{ lo, hi int64 }{
	"node.id":                          {0, math.MaxInt32},
	"upstream.produce_inflight":        {1, 5},
	"kafka.max_inflight_per_conn":      {1, 1024},
	"kafka.max_connections":            {0, 1 << 24},
	"kafka.max_connections_per_ip":     {0, 1 << 24},
	"groups.max_size":                  {0, 1 << 20},
	"mqtt.max_connections":             {0, 1 << 24},
	"mqtt.max_inflight":                {1, 65535},
	"http.consumers.max_instances":     {1, 1_000_000},
	"mqtt.topic_alias_maximum":         {0, 65535},
	"mqtt.topics.partitions":           {0, 100000},
	"mqtt.topics.replication":          {0, 32767},
	"http.consumers.replication":       {0, 32767},
	"http.schema_registry.replication": {0, 32767},
	"dev.nodes":                        {1, 9},
	"dev.brokers":                      {1, 9},
	"dev.partitions":                   {1, 1000},
}

func outOfRange(lo, hi int64, got string) string {
	return fmt.Sprintf("must be between %d and %d, got %s", lo, hi, got)
}

type validator struct{ errs Errors }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) intRange(path string, got int64) {
	r, ok := intRanges[path]
	if !ok {
		panic("config: no range for integer key " + path)
	}
	if got < r.lo || got > r.hi {
		v.add(path, "%s", outOfRange(r.lo, r.hi, strconv.FormatInt(got, 10)))
	}
}

func (v *validator) sizeRange(path string, got, lo, hi Size) {
	if got < lo || got > hi {
		v.add(path, "must be between %s and %s, got %s", lo, hi, got)
	}
}

func (v *validator) durationRange(path string, got Duration, lo, hi time.Duration) {
	if got.D() < lo || got.D() > hi {
		v.add(path, "must be between %s and %s, got %s", Duration(lo), Duration(hi), got)
	}
}

func (v *validator) nonEmpty(path, got string) {
	if strings.TrimSpace(got) == "" {
		v.add(path, "must not be empty")
	}
}

func (v *validator) oneOf(path, got string, allowed ...string) {
	if !slices.Contains(allowed, got) {
		v.add(path, "must be one of %s; got %q", strings.Join(allowed, ", "), got)
	}
}

type addrRules struct {
	needHost    bool // the address is dialled, not listened on
	needIP      bool // the host must be an IP address (or empty), not a name
	emptyPortOK bool // "host:" listens on any free port
	noZeroPort  bool // port 0 cannot be dialled
}

// hostPort reports whether addr passed.
func (v *validator) hostPort(path, addr string, r addrRules) bool {
	before := len(v.errs)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(path, "must be host:port, e.g. \"127.0.0.1:9092\", got %q", addr)
		return false
	}
	if r.needHost && host == "" {
		v.add(path, "must name a host, e.g. \"kafka.example.com:9092\", got %q", addr)
	}
	if r.needIP && host != "" && net.ParseIP(host) == nil {
		v.add(path, "must be an IP address and port, e.g. \"10.0.0.1:7946\" (gossip uses addresses, not names), got %q", addr)
	}
	if port == "" {
		if !r.emptyPortOK {
			v.add(path, "must include a port, got %q", addr)
		}
		return len(v.errs) == before
	}
	lo := 0
	if r.noZeroPort {
		lo = 1
	}
	// strconv.Atoi would accept "+80"; a port is digits only.
	n, err := strconv.Atoi(port)
	if err != nil || strings.TrimLeft(port, "0123456789") != "" || n < lo || n > 65535 {
		v.add(path, "port must be a number between %d and 65535, got %q", lo, port)
	}
	return len(v.errs) == before
}

// allInterfaces names the wildcard host of a listen address ("0.0.0.0",
// "::" or "empty host"), or returns "" when addr names one interface.
func allInterfaces(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	switch {
	case err != nil:
		return ""
	case host == "":
		return "empty host"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return host
	}
	return ""
}

// checkTopic applies Kafka's own topic name rules, so a typo is caught
// here rather than as an opaque error from the upstream.
func checkTopic(t string) string {
	switch {
	case t == "":
		return "topic name must not be empty"
	case len(t) > 249:
		return fmt.Sprintf("topic name must be at most 249 characters, got %d", len(t))
	case t == "." || t == "..":
		return fmt.Sprintf("topic name %q is not allowed", t)
	}
	for _, c := range t {
		ok := c == '.' || c == '_' || c == '-' ||
			c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !ok {
			return fmt.Sprintf("invalid topic name %q: only letters, digits, '.', '_' and '-' are allowed", t)
		}
	}
	return ""
}
