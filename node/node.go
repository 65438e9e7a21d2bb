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
	n.reg = cluster.NewRegistry(self)

	n.budget = partition.NewBudget(int64(cfg.Cache.NodeMaxBytes))
	feeds := partition.NewFeeds()
	mesh, err := cluster.Start(cluster.Config{
		Name: cfg.Cluster.Name,
		Bind: cfg.Cluster.Bind,
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
		Logger: log,
	})
	if err != nil {
		ln.Close()
		up.Close()
		return nil, err
	}
	n.mesh = mesh

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
		"advertise", net.JoinHostPort(self.Host, strconv.Itoa(int(self.Port))), "upstream", cfg.Upstream.Brokers)
	return n, nil
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
				if err := n.mesh.Send(partition.Kind, id, &partition.Warm{}); err != nil {
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

// Shutdown stops accepting, answers the requests already read within ctx,
// then stops the actors and closes upstream connections.
func (n *Node) Shutdown(ctx context.Context) error {
	err := n.srv.Shutdown(ctx)
	n.cancel()
	n.wg.Wait()
	n.mesh.Stop()
	n.up.Close()
	n.log.Info("meshka node stopped")
	return err
}
