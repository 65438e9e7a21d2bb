package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/embedded"
	"github.com/meshka/meshka/internal/countnet"
	"github.com/meshka/meshka/node"
)

// Cluster is one upstream cluster and several meshka nodes joined in one
// mesh in front of it, on loopback and free ports, with failure detection
// fast enough for tests: probes every 100 ms, a silent node dead after
// cluster.suspicion_timeout (1 s unless an option says otherwise).
type Cluster struct {
	log      *slog.Logger
	Upstream *kfake.Cluster
	// Nodes[i] is node id i; nil once stopped or crashed.
	Nodes        []*node.Node
	Configs      []config.Config
	UpstreamSent *atomic.Int64
}

// StartCluster runs a 3-broker upstream and n meshka nodes, ids 0…n-1,
// each joining node 0, and waits until every node sees all n. All stop at
// test cleanup.
func StartCluster(tb testing.TB, n int, opts ...Option) *Cluster {
	tb.Helper()
	return StartClusterWith(tb, n, nil, opts...)
}

// StartClusterWith is StartCluster with options for the upstream cluster.
func StartClusterWith(tb testing.TB, n int, upstreamOpts []kfake.Opt, opts ...Option) *Cluster {
	tb.Helper()
	sent := new(atomic.Int64)
	up, err := embedded.Start(embedded.Config{Brokers: 3, Partitions: 3}, append(upstreamOpts, kfake.ListenFn(countnet.ListenFn(sent, nil)))...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(up.Close)
	c := &Cluster{log: Logger(), Upstream: up, UpstreamSent: sent, Nodes: make([]*node.Node, n), Configs: make([]config.Config, n)}
	for i := range n {
		cfg := config.Default()
		cfg.Node.ID = int32(i)
		cfg.Node.Listen = "127.0.0.1:0"
		cfg.Cluster.Bind = "127.0.0.1:0"
		cfg.Admin.Listen = "127.0.0.1:0"
		// Off unless an option turns it on: protoactor's remoting races
		// with itself between nodes in one process (see internal/race).
		cfg.Cluster.Remote = ""
		cfg.Cluster.ProbeInterval = config.Duration(100 * time.Millisecond)
		cfg.Cluster.SuspicionTimeout = config.Duration(time.Second)
		cfg.Cluster.LeaveTimeout = config.Duration(time.Second)
		cfg.Upstream.Brokers = up.ListenAddrs()
		cfg.Kafka.ShutdownTimeout = config.Duration(5 * time.Second)
		if i > 0 {
			cfg.Cluster.Join = []string{c.Nodes[0].GossipAddr()}
		}
		for _, o := range opts {
			o(&cfg)
		}
		c.Configs[i] = cfg
		nd, err := node.Start(cfg, node.Options{Logger: c.log})
		if err != nil {
			tb.Fatalf("node %d: %v", i, err)
		}
		c.Nodes[i] = nd
	}
	tb.Cleanup(func() { c.stopAll(tb) })
	c.WaitMembers(tb, n)
	return c
}

// WaitMembers waits, bounded by 30 s, until every running node lists
// exactly want brokers.
func (c *Cluster) WaitMembers(tb testing.TB, want int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		ok := true
		for _, n := range c.Nodes {
			if n != nil && len(n.Registry().Nodes()) != want {
				ok = false
			}
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			for i, n := range c.Nodes {
				if n != nil {
					tb.Logf("node %d lists %v", i, n.Registry().Nodes())
				}
			}
			tb.Fatalf("the nodes do not all list %d brokers", want)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Addr is node i's Kafka address.
func (c *Cluster) Addr(i int) string { return c.Nodes[i].Addr().String() }

// Addrs are the Kafka addresses of the running nodes.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		if n != nil {
			out = append(out, n.Addr().String())
		}
	}
	return out
}

// Client is a franz-go client bootstrapping from node i only; it closes
// at test cleanup.
func (c *Cluster) Client(tb testing.TB, i int, opts ...kgo.Opt) *kgo.Client {
	return newClient(tb, []string{c.Addr(i)}, opts)
}

// DirectClient is a franz-go client of the upstream, bypassing meshka.
func (c *Cluster) DirectClient(tb testing.TB, opts ...kgo.Opt) *kgo.Client {
	return newClient(tb, c.Upstream.ListenAddrs(), opts)
}

// Stop stops node i as SIGTERM does: it leaves the cluster, then drains.
func (c *Cluster) Stop(tb testing.TB, i int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Nodes[i].Shutdown(ctx); err != nil {
		tb.Errorf("node %d did not drain: %v", i, err)
	}
	c.Nodes[i] = nil
}

// Crash stops node i as a kill would: no leave, every connection cut.
func (c *Cluster) Crash(i int) {
	c.Nodes[i].Crash()
	c.Nodes[i] = nil
}

// Restart starts node i again, with its id and a fresh process's state,
// joining a running node.
func (c *Cluster) Restart(tb testing.TB, i int) {
	tb.Helper()
	cfg := c.Configs[i]
	cfg.Cluster.Join = nil
	for j, n := range c.Nodes {
		if n != nil && j != i {
			cfg.Cluster.Join = []string{n.GossipAddr()}
			break
		}
	}
	nd, err := node.Start(cfg, node.Options{Logger: c.log})
	if err != nil {
		tb.Fatalf("restarting node %d: %v", i, err)
	}
	c.Nodes[i] = nd
}

func (c *Cluster) stopAll(tb testing.TB) {
	for i, n := range c.Nodes {
		if n != nil {
			c.Stop(tb, i)
		}
	}
}

// String names the nodes and their addresses, for failure messages.
func (c *Cluster) String() string {
	s := ""
	for i, n := range c.Nodes {
		if n != nil {
			s += fmt.Sprintf("node %d at %s; ", i, n.Addr())
		}
	}
	return s
}
