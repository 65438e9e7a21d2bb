// Package node assembles one meshka node from its configuration: the
// upstream clients, the actor mesh, and the Kafka listener.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/meshka/meshka/actors/group"
	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/kafkawire"
	apimesh "github.com/meshka/meshka/mesh"
	"github.com/meshka/meshka/netguard"
	"github.com/meshka/meshka/upstream"
)

// upstreamName names the single upstream cluster in partition identities;
// multi-upstream fan-in will name each.
const upstreamName = "default"

// Options carry what a configuration file cannot: the logger and, for
// tests and benchmarks, a custom upstream dialer.
type Options struct {
	Logger *slog.Logger
	Dialer func(ctx context.Context, network, host string) (net.Conn, error)
}

// Node is a running meshka node.
type Node struct {
	cfg  config.Config
	log  *slog.Logger
	up   *upstream.Client
	mesh *cluster.Mesh
	api  *apimesh.Mesh // the records API bindings use
	reg  *cluster.Registry
	srv  *kafkawire.Server
	ln   net.Listener

	budget *partition.Budget

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	served chan error
}

// Start binds the Kafka listener, joins the mesh and begins serving. The
// upstream is contacted lazily, so a node starts while upstream is down.
func Start(cfg config.Config, opts Options) (*Node, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errs
	}
	if len(cfg.Upstream.Brokers) == 0 {
		return nil, fmt.Errorf("upstream.brokers: at least one broker is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	n := &Node{cfg: cfg, log: log, served: make(chan error, 1)}
	n.ctx, n.cancel = context.WithCancel(context.Background())

	up, err := upstream.New(upstream.Config{
		Brokers:        cfg.Upstream.Brokers,
		ClientID:       cfg.Upstream.ClientID,
		RequestTimeout: cfg.Upstream.RequestTimeout.D(),
		MetadataTTL:    cfg.Upstream.MetadataTTL.D(),
		Logger:         log,
		Dialer:         opts.Dialer,
	})
	if err != nil {
		return nil, err
	}
	n.up = up

	ln, err := net.Listen("tcp", cfg.Node.Listen)
	if err != nil {
		up.Close()
		return nil, fmt.Errorf("kafka listener: %w", err)
	}
	n.ln = ln
	self, err := cluster.ParseNode(cfg.Node.ID, advertised(cfg, ln.Addr()))
	if err != nil {
		ln.Close()
		up.Close()
		return nil, err
	}
	n.budget = partition.NewBudget(int64(cfg.Cache.NodeMaxBytes))
	feeds := partition.NewFeeds()
	mesh, err := cluster.Start(cluster.Config{
		Gossip: cluster.GossipConfig{
			Self: cluster.Member{
				Cluster: cfg.Cluster.Name,
				NodeID:  cfg.Node.ID,
				Kafka:   net.JoinHostPort(self.Host, strconv.Itoa(int(self.Port))),
			},
			Bind:             cfg.Cluster.Bind,
			Advertise:        cfg.Cluster.AdvertiseBind,
			Join:             cfg.Cluster.Join,
			ProbeInterval:    cfg.Cluster.ProbeInterval.D(),
			SuspicionTimeout: cfg.Cluster.SuspicionTimeout.D(),
		},
		Remote:          cfg.Cluster.Remote,
		AdvertiseRemote: cfg.Cluster.AdvertiseRemote,
		Kinds: map[string]*actor.Props{
			partition.Kind: partition.Props(partition.Config{
				Upstream:    up,
				Budget:      n.budget,
				Feeds:       feeds,
				MaxBytes:    int64(cfg.Cache.PartitionMaxBytes),
				IdleTimeout: cfg.Cache.IdleTimeout.D(),
				MaxInFlight: cfg.Upstream.ProduceInflight,
				Logger:      log,
			}),
			group.Kind: group.Props(group.Config{
				InitialRebalanceDelay: cfg.Groups.InitialRebalanceDelay.D(),
				MinSessionTimeout:     cfg.Groups.MinSessionTimeout.D(),
				MaxSessionTimeout:     cfg.Groups.MaxSessionTimeout.D(),
				MaxSize:               cfg.Groups.MaxSize,
				Logger:                log,
			}),
		},
		Spread: map[string]cluster.Spreader{partition.Kind: spreadPartitions},
		Logger: log,
	})
	if err != nil {
		ln.Close()
		up.Close()
		return nil, err
	}
	n.mesh = mesh
	n.reg = cluster.NewRegistry(self, mesh)
	n.api = apimesh.New(apimesh.Config{Cluster: mesh, Upstream: up, UpstreamName: upstreamName, Logger: log})

	maxConns := cfg.Kafka.MaxConnections
	if maxConns == 0 {
		maxConns = netguard.MaxConnsFromFileLimit()
	}
	n.srv = kafkawire.New(kafkawire.Config{
		MaxFrameBytes:      int32(min(int64(cfg.Kafka.MaxFrameBytes), 1<<31-1)),
		MaxInflight:        cfg.Kafka.MaxInflightPerConn,
		FetchMaxWaitCap:    cfg.Kafka.FetchMaxWaitCap.D(),
		Limits:             netguard.Limits{MaxConns: maxConns, MaxConnsPerIP: cfg.Kafka.MaxConnectionsPerIP},
		IdleTimeout:        cfg.Kafka.IdleTimeout.D(),
		RequestReadTimeout: cfg.Kafka.RequestReadTimeout.D(),
		WriteTimeout:       cfg.Kafka.WriteTimeout.D(),
		RequestBudget:      netguard.NewBudget(int64(cfg.Kafka.MaxRequestMemory)),
		ResponseBudget:     netguard.NewBudget(int64(cfg.Kafka.MaxResponseMemory)),
	}, kafkawire.Deps{Upstream: up, UpstreamName: upstreamName, Mesh: mesh, Feeds: feeds, Registry: n.reg, Logger: log})
	go func() { n.served <- n.srv.Serve(ln) }()

	// Learn upstream's versions early, so requests at versions upstream
	// lacks are refused even from clients that skip ApiVersions.
	n.wg.Add(1)
	go func() { defer n.wg.Done(); n.learnVersions() }()
	for _, topic := range cfg.Cache.Bootstrap {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.warm(topic) }()
	}
	log.Info("meshka node started", "node", self.ID, "listen", ln.Addr().String(),
		"advertise", net.JoinHostPort(self.Host, strconv.Itoa(int(self.Port))), "upstream", cfg.Upstream.Brokers,
		"gossip", n.GossipAddr(), "members", len(n.reg.Nodes()))
	return n, nil
}

// spreadPartitions places a topic's partitions evenly over the nodes, as
// a Kafka cluster spreads leadership.
func spreadPartitions(identity string) (string, int, bool) {
	up, topic, p, err := partition.ParseIdentity(identity)
	if err != nil {
		return "", 0, false
	}
	return up + "/" + topic, int(p), true
}

// advertised is the configured advertised address, with the bound port
// filled in when the listener asked for any port.
func advertised(cfg config.Config, bound net.Addr) string {
	adv := cfg.AdvertiseAddr()
	host, port, err := net.SplitHostPort(adv)
	if err == nil && port == "0" {
		if _, p, err := net.SplitHostPort(bound.String()); err == nil {
			return net.JoinHostPort(host, p)
		}
	}
	return adv
}

// Addr is the Kafka listener's bound address.
func (n *Node) Addr() net.Addr { return n.ln.Addr() }

// Kafka is the node's Kafka listener, for its counters.
func (n *Node) Kafka() *kafkawire.Server { return n.srv }

// CacheBytes is the bytes all partition caches on the node hold.
func (n *Node) CacheBytes() int64 { return n.budget.Used() }

// Upstream is the node's upstream client.
func (n *Node) Upstream() *upstream.Client { return n.up }

// Done reports a listener that failed on its own.
func (n *Node) Done() <-chan error { return n.served }

func (n *Node) learnVersions() {
	for attempt := 0; n.ctx.Err() == nil; attempt++ {
		if _, err := n.up.ApiVersions(n.ctx); err == nil {
			return
		} else if attempt == 0 {
			n.log.Warn("upstream not reachable yet; retrying", "err", err)
		}
		t := time.NewTimer(time.Second << min(attempt, 5))
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
		}
	}
}

// warm keeps a bootstrap topic's partitions streamed with no reader.
func (n *Node) warm(topic string) {
	for attempt := 0; n.ctx.Err() == nil; attempt++ {
		ts, err := n.up.Meta().Topics(n.ctx, []string{topic}, false)
		if err == nil && len(ts) == 1 && ts[0].Err == 0 {
			for _, p := range ts[0].Partitions {
				id := partition.Identity(upstreamName, topic, p.Partition)
				if err := n.mesh.Tell(partition.Kind, id, &partition.Warm{}); err != nil {
					n.log.Warn("bootstrap: partition actor unavailable", "topic", topic, "partition", p.Partition, "err", err)
				}
			}
			n.log.Info("bootstrap topic kept warm", "topic", topic, "partitions", len(ts[0].Partitions))
			return
		}
		if attempt == 0 {
			n.log.Warn("bootstrap topic not available upstream yet; retrying", "topic", topic, "err", err)
		}
		t := time.NewTimer(time.Second << min(attempt, 5))
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
		}
	}
}

// Shutdown leaves the cluster first (the other nodes take this node's
// partitions and groups, and this node sends its clients to them), then
// stops accepting, answers the requests already read within ctx, stops
// the actors and closes upstream connections.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mesh.Leave(n.cfg.Cluster.LeaveTimeout.D())
	err := n.srv.Shutdown(ctx)
	n.cancel()
	n.wg.Wait()
	n.api.Close()
	n.mesh.Stop()
	n.up.Close()
	n.log.Info("meshka node stopped")
	return err
}

// Crash stops the node as a killed process would, for tests: no word to
// the other nodes, which find out by failure detection; every client
// connection cut at once, answered or not.
func (n *Node) Crash() {
	n.mesh.Crash()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.srv.Shutdown(ctx)
	n.cancel()
	n.wg.Wait()
	n.api.Close()
	n.mesh.Stop()
	n.up.Close()
}

// PartitionActive reports whether the actor of topic's partition p is
// active on this node.
func (n *Node) PartitionActive(topic string, p int32) bool {
	return n.mesh.Active(partition.Kind, partition.Identity(upstreamName, topic, p))
}

// GroupActive reports whether the actor of group id is active on this node.
func (n *Node) GroupActive(id string) bool {
	return n.mesh.Active(group.Kind, group.Identity(upstreamName, id))
}

// GossipAddr is the node's memberlist address, which other nodes join at.
func (n *Node) GossipAddr() string { return n.mesh.Members().Self().Gossip }

// Registry is the node's view of the cluster as Kafka clients see it.
func (n *Node) Registry() *cluster.Registry { return n.reg }

// PartitionReader reads a partition through the mesh from offset on, from
// its owner's cache wherever the owner is (see partition.Reader).
func (n *Node) PartitionReader(topic string, p int32, offset int64, isolation int8) *partition.Reader {
	return partition.NewReader(n.mesh, n.up, upstreamName, topic, p, offset, isolation)
}

// Produce sends one record batch through the mesh to the partition's
// owner, wherever it is, which forwards it upstream in its ordered
// pipeline, and returns upstream's answer.
func (n *Node) Produce(ctx context.Context, args upstream.ProduceArgs) (upstream.ProduceResult, error) {
	return partition.Produce(ctx, n.mesh, upstreamName, args)
}

// Mesh is the node's records API (package mesh), what bindings use.
func (n *Node) Mesh() *apimesh.Mesh { return n.api }
