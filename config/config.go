// Package config loads, checks and documents meshka's YAML configuration,
// reporting every problem in a file at once with its line and column.
package config

import "time"

// Config is the whole meshka configuration. Zero values are not meaningful
// defaults; start from Default and override.
type Config struct {
	Node     Node     `yaml:"node"`
	Cluster  Cluster  `yaml:"cluster"`
	Upstream Upstream `yaml:"upstream"`
	Kafka    Kafka    `yaml:"kafka"`
	Cache    Cache    `yaml:"cache"`
	Groups   Groups   `yaml:"groups"`
	Tables   Tables   `yaml:"tables"`
	MQTT     MQTT     `yaml:"mqtt"`
	HTTP     HTTP     `yaml:"http"`
	Admin    Admin    `yaml:"admin"`
	Security Security `yaml:"security"`
	Log      Log      `yaml:"log"`
	Dev      Dev      `yaml:"dev"`
	// Schema says where schemas come from when not from the built-in
	// registry: an external one (docs/schemas.md).
	Schema Schema `yaml:"schema"`
	// Topics say what the records of topics are, and which produced
	// records meshka refuses (docs/schemas.md).
	Topics []TopicRule `yaml:"topics,omitempty"`
	// Bindings holds, by binding name, the section of each binding the
	// node starts, for that binding to decode (see Section). Which names
	// exist is known only where the bindings are registered, at node
	// start, not here.
	Bindings map[string]Section `yaml:"bindings,omitempty"`
}

// Node identifies this proxy to Kafka clients.
type Node struct {
	// ID is the broker id this node claims in Metadata responses; it must be
	// stable across restarts so clients' cached leadership stays valid.
	ID int32 `yaml:"id"`
	// Listen is the host:port of the Kafka listener.
	Listen string `yaml:"listen"`
	// Advertise is the host:port clients are told to connect to; empty means
	// Listen. Needed whenever clients reach the node through NAT or a load
	// balancer.
	Advertise string `yaml:"advertise"`
}

// Cluster configures how meshka nodes find each other and talk: the
// memberlist gossip (membership and failure detection) and the actor
// remoting between nodes.
type Cluster struct {
	// Name must be the same on every node of one mesh; a node of another
	// cluster is refused.
	Name string `yaml:"name"`
	// Bind is the memberlist gossip address, TCP and UDP.
	Bind string `yaml:"bind"`
	// Remote is the actor remoting address; port 0 picks one, which the
	// node gossips.
	Remote string `yaml:"remote"`
	// Join lists seeds, host:port; a name resolving to several addresses
	// joins them all. Empty forms a new cluster.
	Join []string `yaml:"join"`
	// AdvertiseBind and AdvertiseRemote are what peers dial instead of
	// Bind and Remote, behind NAT or in containers.
	AdvertiseBind   string `yaml:"advertise_bind"`
	AdvertiseRemote string `yaml:"advertise_remote"`
	// ProbeInterval is how often each node probes a random peer;
	// SuspicionTimeout how long a peer that stopped answering is suspected
	// before it is declared dead and its actors move.
	ProbeInterval    Duration `yaml:"probe_interval"`
	SuspicionTimeout Duration `yaml:"suspicion_timeout"`
	// LeaveTimeout bounds how long a stopping node waits for its leave to
	// spread before it stops serving.
	LeaveTimeout Duration `yaml:"leave_timeout"`
	// GossipKeys are base64 AES keys (16, 24 or 32 bytes) that encrypt
	// and authenticate the gossip: the first encrypts, every one
	// decrypts, so a key is replaced in three rolling steps (add it
	// second, make it first, drop the old one). A node without a key the
	// others encrypt with cannot join. Empty, and GossipKeyFile too: the
	// gossip is in the clear.
	GossipKeys []string `yaml:"gossip_keys"`
	// GossipKeyFile holds the keys instead, one per line, in the same
	// order; read at start (see GossipKeyring).
	GossipKeyFile string `yaml:"gossip_key_file"`
	// RemoteTLS secures actor remoting with mutual TLS: cert_file and
	// key_file are this node's certificate, presented both when it
	// serves and when it dials; ca_file the CA that signs every node's,
	// against which both ends check the other. Empty: remoting is in
	// the clear.
	RemoteTLS TLS `yaml:"remote_tls"`
}

// Upstream describes the real Kafka cluster behind the proxy.
type Upstream struct {
	// Brokers is only required by `meshka run`; `meshka dev` supplies its own.
	Brokers        []string `yaml:"brokers"`
	ClientID       string   `yaml:"client_id"`
	RequestTimeout Duration `yaml:"request_timeout"`
	// MetadataTTL trades freshness of leadership and partition counts
	// against metadata load on the upstream.
	MetadataTTL Duration `yaml:"metadata_ttl"`
	// ProduceInflight is how many batches of one partition may be on their
	// way to the upstream leader at once; order is kept regardless.
	ProduceInflight int `yaml:"produce_inflight"`
	// TLS, when the section is present (even empty), secures every
	// connection to upstream; nil is plaintext.
	TLS *TLS `yaml:"tls"`
	// SASL, when present, authenticates every connection to upstream.
	SASL *SASL `yaml:"sasl"`
}

// Kafka bounds what a single client connection may cost the proxy.
type Kafka struct {
	// Listeners are the node's Kafka listeners beside node.listen, each
	// with its security protocol.
	Listeners          []Listener `yaml:"listeners"`
	MaxFrameBytes      Size       `yaml:"max_frame_bytes"`
	MaxInflightPerConn int        `yaml:"max_inflight_per_conn"`
	// FetchMaxWaitCap caps a client's MaxWaitMs so a misbehaving client
	// cannot pin a fetch goroutine for arbitrarily long.
	FetchMaxWaitCap Duration `yaml:"fetch_max_wait_cap"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`

	// MaxConnections bounds the node's open client connections; past it a
	// new connection is closed at once. 0 derives the bound from the
	// process's open-file limit, leaving room for upstream connections.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIP bounds connections from one remote address; 0
	// means none (clients behind one load balancer share its address).
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// IdleTimeout closes a connection with nothing in flight for this
	// long, as Kafka's connections.max.idle.ms; 0 never does.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// RequestReadTimeout is how long a request, once its first bytes
	// arrived, may take to arrive whole before the connection is closed.
	RequestReadTimeout Duration `yaml:"request_read_timeout"`
	// WriteTimeout closes a connection whose answers the client does not
	// read for this long: a slow consumer.
	WriteTimeout Duration `yaml:"write_timeout"`
	// MaxRequestMemory bounds, for the whole node, the bytes of requests
	// being read or waiting for their answers; when it is spent,
	// connections stop being read until answers free some.
	MaxRequestMemory Size `yaml:"max_request_memory"`
	// MaxResponseMemory bounds, for the whole node, the bytes of answers
	// read from upstream for clients and not yet written to them.
	MaxResponseMemory Size `yaml:"max_response_memory"`
}

// Cache sizes the in-memory record cache that lets many consumers share one
// upstream fetch stream per partition.
type Cache struct {
	PartitionMaxBytes Size `yaml:"partition_max_bytes"`
	// NodeMaxBytes must be at least PartitionMaxBytes, or a single busy
	// partition could never be cached in full.
	NodeMaxBytes Size     `yaml:"node_max_bytes"`
	IdleTimeout  Duration `yaml:"idle_timeout"`
	// Bootstrap topics are streamed even without readers so the first
	// consumer after a restart is served from memory.
	Bootstrap []string `yaml:"bootstrap"`
}

// Groups configures consumer-group coordination, as a Kafka broker's
// group.* settings do.
type Groups struct {
	// InitialRebalanceDelay waits for more members before the first
	// rebalance of an empty group. Kafka defaults to 3s; meshka to 0, since
	// every meshka restart empties its groups and the delay would then
	// stall every consumer's first join.
	InitialRebalanceDelay Duration `yaml:"initial_rebalance_delay"`
	MinSessionTimeout     Duration `yaml:"min_session_timeout"`
	MaxSessionTimeout     Duration `yaml:"max_session_timeout"`
	// MaxSize bounds members per group; 0 means no bound.
	MaxSize int `yaml:"max_size"`
}

// Tables configures the tables over topics (the latest value per key of
// a compacted topic) that bindings read through the mesh API.
type Tables struct {
	// MaxBytes bounds one table's entries in memory (keys, values,
	// headers, and a small overhead per entry); a table that outgrows it
	// answers every request with an error instead of growing.
	MaxBytes Size `yaml:"max_bytes"`
}

// Log configures the process logger.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Dev configures the embedded upstream started by `meshka dev`.
type Dev struct {
	// Nodes is how many meshka nodes dev runs in one process, node i with
	// id node.id + i on every configured port + i, all joined in one
	// cluster in front of the one embedded upstream.
	Nodes      int    `yaml:"nodes"`
	DataDir    string `yaml:"data_dir"`
	Brokers    int    `yaml:"brokers"`
	Partitions int32  `yaml:"partitions"`
}

// Default returns the configuration used for every key a file leaves out.
func Default() Config {
	return Config{
		Node: Node{
			ID:     0,
			Listen: "127.0.0.1:9092",
		},
		Cluster: Cluster{
			Name:             "meshka",
			Bind:             "127.0.0.1:7946",
			Remote:           "127.0.0.1:0",
			ProbeInterval:    Duration(time.Second),
			SuspicionTimeout: Duration(4 * time.Second),
			LeaveTimeout:     Duration(2 * time.Second),
		},
		Upstream: Upstream{
			ClientID:        "meshka",
			RequestTimeout:  Duration(30 * time.Second),
			MetadataTTL:     Duration(10 * time.Second),
			ProduceInflight: 5,
		},
		Kafka: Kafka{
			MaxFrameBytes:      100 * MiB,
			MaxInflightPerConn: 32,
			FetchMaxWaitCap:    Duration(30 * time.Second),
			ShutdownTimeout:    Duration(10 * time.Second),
			IdleTimeout:        Duration(10 * time.Minute),
			RequestReadTimeout: Duration(30 * time.Second),
			WriteTimeout:       Duration(30 * time.Second),
			MaxRequestMemory:   256 * MiB,
			MaxResponseMemory:  256 * MiB,
		},
		Cache: Cache{
			PartitionMaxBytes: 64 * MiB,
			NodeMaxBytes:      1 * GiB,
			IdleTimeout:       Duration(60 * time.Second),
		},
		Groups: Groups{
			MinSessionTimeout: Duration(6 * time.Second),
			MaxSessionTimeout: Duration(30 * time.Minute),
		},
		Tables: Tables{MaxBytes: 256 * MiB},
		MQTT:   defaultMQTT(),
		HTTP:   defaultHTTP(),
		Admin:  defaultAdmin(),
		Schema: defaultSchema(),
		Log: Log{
			Level:  "info",
			Format: "text",
		},
		Dev: Dev{
			Nodes:      1,
			DataDir:    "./.meshka-dev",
			Brokers:    3,
			Partitions: 3,
		},
	}
}

// AdvertiseAddr is the address clients are told to connect to. Validate
// refuses a listen address on all interfaces without an advertised one, so
// for a valid Config this is an address clients can dial.
func (c *Config) AdvertiseAddr() string {
	if c.Node.Advertise != "" {
		return c.Node.Advertise
	}
	return c.Node.Listen
}
