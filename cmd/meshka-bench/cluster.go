package main

import (
	"context"
	"fmt"
	"time"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/node"
)

const (
	clusterNodes = 3
	// c3Readers read one partition of c3Records 1 KiB records, bootstrapping
	// from the nodes in turn.
	c3Readers = 300
	c3Records = 16 << 10
)

// startCluster starts n meshka nodes in front of u, joined in one cluster,
// and waits until every node lists n brokers. Remoting is off unless tune
// turns it on (C4): Kafka clients go to the node that owns their
// partition, so none of their requests crosses nodes.
func (u *upstream) startCluster(n int, tune func(*config.Config)) ([]*node.Node, error) {
	var nodes []*node.Node
	for i := range n {
		nd, err := u.startNode(func(c *config.Config) {
			c.Node.ID = int32(i)
			c.Cluster.Remote = ""
			if i > 0 {
				c.Cluster.Join = []string{nodes[0].GossipAddr()}
			}
			if tune != nil {
				tune(c)
			}
		})
		if err != nil {
			for _, nd := range nodes {
				nd.Shutdown(context.Background())
			}
			return nil, err
		}
		nodes = append(nodes, nd)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, nd := range nodes {
		for len(nd.Registry().Nodes()) != n {
			if time.Now().After(deadline) {
				return nodes, fmt.Errorf("the nodes did not all see %d members within 30 s", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nodes, nil
}

// stopCluster shuts the nodes down, last first, as `meshka dev --nodes`
// does, each within the grace of stopNode.
func stopCluster(b *bench, nodes []*node.Node) {
	for i := len(nodes) - 1; i >= 0; i-- {
		if nodes[i] == nil {
			continue
		}
		if err := stopNode(b, nodes[i]); err != nil {
			b.progress("meshka shutdown: %v", err)
		}
	}
}

// runCluster is C1-C3: P1's producer, P2's paced producer and P3's many
// readers, each straight to upstream and through three meshka nodes.
func runCluster(b *bench) section {
	b.meshNodes = clusterNodes
	defer func() { b.meshNodes = 1 }()

	s, direct := produceRuns(b, "C1")
	b.c1Direct = direct
	s.rows[0].what += fmt.Sprintf(", through %d meshka nodes", clusterNodes)
	s.rows[0].target, s.rows[0].check = "≥ 0.95", func(x float64) bool { return x >= 0.95 }

	if b.c1Direct > 0 {
		l := latencySection(b, "C2", b.c1Direct*1e6/2, fmt.Sprintf("half of C1's direct median in this run (%.1f MB/s)", b.c1Direct), "")
		for i := range l.rows {
			l.rows[i].what += fmt.Sprintf(" (%d nodes)", clusterNodes)
		}
		s.rows = append(s.rows, l.rows...)
		s.samples = append(s.samples, l.samples...)
		s.notes = append(s.notes, l.notes...)
	} else {
		s.notes = append(s.notes, "C2 not run: C1 failed, so there is no rate to pace at.")
	}

	c3 := runClusterFanout(b)
	s.rows = append(s.rows, c3.rows...)
	s.samples = append(s.samples, c3.samples...)
	s.notes = append(s.notes, c3.notes...)

	s.notes = append(s.notes,
		fmt.Sprintf("The %d nodes run in this process, in front of the same 3-broker kfake, joined in one cluster; the producer is seeded with "+
			"all three. Each node leads a third of the partitions (a topic's partitions are spread evenly), so the producer's per-broker "+
			"machinery runs once per node, as it does once per kfake broker directly. Three nodes, the producer and kfake share 2 cores.", clusterNodes),
	)
	return s
}

// runClusterFanout is C3: readers of one partition, bootstrapping from the
// nodes in turn; every one is sent to the partition's owner, so upstream
// is read once whatever node a reader starts from.
func runClusterFanout(b *bench) section {
	s := section{}
	up, topic, err := preloadedUpstream(b, "C3", "bench-c3", c3Records)
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "C3 FAILED: "+err.Error())
		return s
	}
	defer up.close()
	var direct, meshka []float64
	for r := range b.roundsFor("C3", b.opts.rounds) {
		for _, side := range []string{"direct", "meshka"} {
			collectGarbage()
			x := clusterFanoutOnce(b, up, topic, side, r)
			s.samples = append(s.samples, x)
			if x.err != "" {
				b.failed = true
				b.progress("C3 round %d %s: FAILED: %s", r, side, x.err)
				s.notes = append(s.notes, fmt.Sprintf("FAILED: C3 round %d %s: %s", r, side, x.err))
				continue
			}
			b.progress("C3 round %d/%d %-6s %d reader(s), upstream sent %7.1f MiB in %.2f s",
				r, b.opts.rounds, side, x.records/c3Records, float64(x.upstream)/(1<<20), x.elapsed.Seconds())
			if side == "direct" {
				direct = append(direct, float64(x.upstream)/(1<<20))
			} else {
				meshka = append(meshka, float64(x.upstream)/(1<<20))
			}
		}
	}
	s.rows = []row{{
		id:   "C3",
		what: fmt.Sprintf("upstream MiB sent: %d readers of one partition (%d MiB) bootstrapping from the %d nodes in turn vs ONE direct reader", c3Readers, c3Records>>10, clusterNodes),
		unit: "MiB", direct: direct, meshka: meshka,
		target: "≤ 1.05", check: func(x float64) bool { return x <= 1.05 },
	}}
	s.notes = append(s.notes, fmt.Sprintf("C3: the direct side is one reader straight from upstream; the meshka side %d readers, reader i seeded "+
		"with node i mod %d only, each reading the whole partition from offset 0 with every offset checked; fresh nodes per round (cold caches). "+
		"Upstream bytes include the nodes' metadata and stream requests.", c3Readers, clusterNodes))
	return s
}

func clusterFanoutOnce(b *bench, up *upstream, topic, side string, round int) sample {
	readers := 1
	if side == "meshka" {
		readers = c3Readers
	}
	x := fanoutOnce(b, up, topic, c3Records, side, readers, round, nil)
	x.case_ = "C3"
	return x
}
