package node

import (
	"context"
	"fmt"
	"maps"
	"net"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/meshka/meshka/actors/group"
	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/admin"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/tlsfiles"
)

// adminMaxConns bounds the admin listener's connections (probes, scrapes,
// status pages and the other nodes asking for the status).
const adminMaxConns = 256

// adminAddrKey is the admin listener's entry in a member's Addrs.
const adminAddrKey = "admin"

// newRegistry is a node's metrics registry, with the Go runtime's and the
// process's collectors and the build's version.
func newRegistry(version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	if version == "" {
		version = "dev"
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "meshka_build_info",
		Help:        "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), build)
	return reg
}

// partitionCollector reports what the node's partitions count together
// (partition.Stats) and hold (the cache budget), read at each scrape.
type partitionCollector struct {
	b                                     *partition.Budget
	bytes, limit, hits, misses, evictions *prometheus.Desc
	inFlight, retried                     *prometheus.Desc
}

func newPartitionCollector(b *partition.Budget) *partitionCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &partitionCollector{b: b,
		bytes:     d("meshka_cache_bytes", "Bytes of record batches the node's partition caches hold."),
		limit:     d("meshka_cache_limit_bytes", "The bound on meshka_cache_bytes (cache.node_max_bytes)."),
		hits:      d("meshka_cache_hits_total", "Reads of a partition the cache answered with records."),
		misses:    d("meshka_cache_misses_total", "Reads of a partition at an offset the cache does not hold (before its window, or evicted), answered from upstream."),
		evictions: d("meshka_cache_evictions_total", "Record batches dropped from partition caches to stay within their bounds, or deleted upstream."),
		inFlight:  d("meshka_produce_batches_inflight", "Produce batches sent to upstream and not yet answered."),
		retried:   d("meshka_produce_batches_retried_total", "Produce batches meshka sent upstream again after a retriable failure (a leader change, a lost connection)."),
	}
}

func (c *partitionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bytes, c.limit, c.hits, c.misses, c.evictions, c.inFlight, c.retried} {
		ch <- d
	}
}

func (c *partitionCollector) Collect(ch chan<- prometheus.Metric) {
	s := &c.b.Stats
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(c.bytes, c.b.Used())
	gauge(c.limit, c.b.Max())
	counter(c.hits, s.Hits.Load())
	counter(c.misses, s.Misses.Load())
	counter(c.evictions, s.Evictions.Load())
	gauge(c.inFlight, s.InFlight.Load())
	counter(c.retried, s.Retried.Load())
}

// bindAdmin binds admin.listen and builds the TLS of the listener and of
// this node's calls to the other nodes' admin listeners; nil listener
// when admin.listen is empty.
func (n *Node) bindAdmin() (net.Listener, admin.Config, error) {
	a := n.cfg.Admin
	cfg := admin.Config{AllowAnonymous: a.AllowAnonymous}
	if a.Listen == "" {
		return nil, cfg, nil
	}
	if a.TLS != nil {
		t, err := tlsfiles.Server(*a.TLS, n.log.With("listener", "admin"))
		if err != nil {
			return nil, cfg, fmt.Errorf("admin.tls: %w", err)
		}
		cfg.TLS = t
		// The other nodes' certificates are signed as this one's is:
		// checked against admin.tls.ca_file, or the system's roots.
		peer, err := tlsfiles.Client(adminPeerTLS(*a.TLS), n.log.With("client", "admin"))
		if err != nil {
			return nil, cfg, fmt.Errorf("admin.tls: %w", err)
		}
		cfg.PeerTLS = peer
	}
	ln, err := net.Listen("tcp", a.Listen)
	if err != nil {
		return nil, cfg, fmt.Errorf("admin listener: %w", err)
	}
	return ln, cfg, nil
}

// adminPeerTLS is how a node dials its peers' admin listeners: it checks
// their certificates against admin.tls.ca_file (the system's roots when
// empty) and presents its own, for listeners that ask for one.
func adminPeerTLS(t config.TLS) config.TLS {
	return config.TLS{CertFile: t.CertFile, KeyFile: t.KeyFile, CAFile: t.CAFile, MinVersion: t.MinVersion}
}

// adminAdvertise is the address the other nodes reach the admin listener
// at: admin.advertise, else the bound address, its host replaced by the
// Kafka advertised host when it listens on all interfaces.
func adminAdvertise(advertise string, bound net.Addr, kafkaHost string) string {
	if advertise != "" {
		return boundAdvertise(advertise, advertise, bound)
	}
	host, port, _ := net.SplitHostPort(bound.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = kafkaHost
	}
	return net.JoinHostPort(host, port)
}

// readyTTL is how long a readiness check is reused: the probes and every
// status page open cost upstream one ApiVersions a second at most.
const readyTTL = time.Second

// ready names what keeps the node from serving, most fundamental first:
// shutting down, upstream not answering, the mesh not joined, a binding
// unhealthy. Checked at most once per readyTTL; a shutdown is seen at once.
func (n *Node) ready(ctx context.Context) []string {
	if n.ctx.Err() != nil || n.closing.Load() {
		return []string{"node: shutting down"}
	}
	n.readyMu.Lock()
	defer n.readyMu.Unlock()
	if time.Since(n.readyAt) < readyTTL {
		return n.reasons
	}
	n.reasons, n.readyAt = n.check(ctx), time.Now()
	return n.reasons
}

func (n *Node) check(ctx context.Context) []string {
	var out []string
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := n.up.Ping(ctx); err != nil {
		out = append(out, fmt.Sprintf("upstream: no broker of %s answers: %v", strings.Join(n.cfg.Upstream.Brokers, ","), err))
	}
	if !n.mesh.Members().Joined() {
		out = append(out, fmt.Sprintf("mesh: not joined; no seed of cluster.join (%s) has answered yet", strings.Join(n.cfg.Cluster.Join, ",")))
	}
	health := n.BindingHealth()
	for _, name := range slices.Sorted(maps.Keys(health)) {
		if h := health[name]; !h.OK {
			out = append(out, fmt.Sprintf("binding %s: %s", name, h.Detail))
		}
	}
	return out
}

// localStatus is this node's status for the status page.
func (n *Node) localStatus(ctx context.Context) admin.NodeStatus {
	self := n.mesh.Members().Self()
	s := admin.NodeStatus{
		ID: n.cfg.Node.ID, Cluster: n.cfg.Cluster.Name, Version: n.version, Started: n.started.UTC(),
		Kafka: self.Kafka, Admin: n.adminAddr, Listeners: self.Addrs,
		Upstream:    admin.UpstreamStatus{Brokers: n.cfg.Upstream.Brokers},
		Actors:      n.mesh.ActiveByKind(),
		Connections: map[string]int{},
		Partitions:  []admin.Partition{},
		Groups:      []string{},
	}
	s.Reasons = n.ready(ctx)
	s.Ready = len(s.Reasons) == 0
	// Up as readiness saw it, so the two never disagree.
	s.Upstream.Up = true
	for _, r := range s.Reasons {
		if rest, ok := strings.CutPrefix(r, "upstream: "); ok {
			s.Upstream.Up, s.Upstream.Error = false, rest
		}
	}
	for _, m := range n.mesh.Members().View().Members {
		s.Members = append(s.Members, m.NodeID)
	}
	for _, id := range n.mesh.Activations(partition.Kind) {
		if _, topic, p, err := partition.ParseIdentity(id); err == nil {
			s.Partitions = append(s.Partitions, admin.Partition{Topic: topic, Partition: p})
		}
	}
	for _, id := range n.mesh.Activations(group.Kind) {
		if _, g, err := group.ParseIdentity(id); err == nil {
			s.Groups = append(s.Groups, g)
		}
	}
	st := &n.budget.Stats
	s.Cache = admin.CacheStatus{Bytes: n.budget.Used(), Limit: n.budget.Max(),
		Hits: st.Hits.Load(), Misses: st.Misses.Load(), Evictions: st.Evictions.Load()}
	if t := s.Cache.Hits + s.Cache.Misses; t > 0 {
		s.Cache.HitRatio = float64(s.Cache.Hits) / float64(t)
	}
	if mfs, err := n.prom.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() != "meshka_connections" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "protocol" {
						s.Connections[l.GetValue()] += int(m.GetGauge().GetValue())
					}
				}
			}
		}
	}
	return s
}

// peers are the other live members and the admin addresses they gossip.
func (n *Node) peers() []admin.Peer {
	var out []admin.Peer
	self := n.mesh.Members().Name()
	for _, m := range n.mesh.Members().View().Members {
		if m.Name == self {
			continue
		}
		out = append(out, admin.Peer{ID: m.NodeID, Admin: m.Addrs[adminAddrKey]})
	}
	return out
}

// stopAdmin closes the admin listener, last of all, so the probes
// answer 503 while the node drains; an already ended ctx closes it at once.
func (n *Node) stopAdmin(ctx context.Context) {
	if n.admin != nil {
		n.admin.Shutdown(ctx)
	} else if n.adminLn != nil {
		n.adminLn.Close()
	}
}

// AdminAddr is the admin listener's bound address; nil without one.
func (n *Node) AdminAddr() net.Addr {
	if n.adminLn == nil {
		return nil
	}
	return n.adminLn.Addr()
}

// Metrics is the node's metrics registry.
func (n *Node) Metrics() *prometheus.Registry { return n.prom }
