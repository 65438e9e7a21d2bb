package mesh_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/race"
	"github.com/meshka/meshka/internal/relay"
	"github.com/meshka/meshka/internal/testcert"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/mesh"
	"github.com/meshka/meshka/node"
)

// A mesh protected as configured for production: three nodes with one
// gossip key and remoting under mutual TLS, each node's remoting reached
// through a relay (the address it gossips). A subscriber on a node that
// does not own the partition gets every record produced on the third
// node; every connection through the relays is TLS from both ends and
// carries neither the topic's name nor a record's value. A fourth node
// with another gossip key is refused and the three keep their view.
func TestRemotingProtectedMesh(t *testing.T) {
	if race.Enabled {
		t.Skip("remoting between nodes in one process: run without -race (make test does)")
	}
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "mesh")
	if err != nil {
		t.Fatal(err)
	}
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	var relays []*relay.Relay
	var tlsOf []config.TLS
	var binds []string
	for i := range 3 {
		p, err := ca.Peer(fmt.Sprintf("node-%d", i), "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		tlsOf = append(tlsOf, config.TLS{CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: ca.CAFile})
		binds = append(binds, freeAddr(t))
		relays = append(relays, relay.Start(t, binds[i]))
	}
	c := testenv.StartCluster(t, 3, func(cfg *config.Config) {
		i := cfg.Node.ID
		cfg.Cluster.GossipKeys = []string{key}
		cfg.Cluster.RemoteTLS = tlsOf[i]
		cfg.Cluster.Remote, cfg.Cluster.AdvertiseRemote = binds[i], relays[i].Addr()
	})
	ctx := timeout(t, 2*time.Minute)
	const topic = "confidential-topic-name"
	createTopic(t, ctx, c.Client(t, 0), topic, 1)
	owner := int(c.Nodes[0].Registry().Owner(partition.Kind, partition.Identity("default", topic, 0)).ID)
	other, third := (owner+1)%3, (owner+2)%3
	sub, err := c.Nodes[other].Mesh().Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.Earliest()})
	if err != nil {
		t.Fatal(err)
	}
	p := c.Nodes[third].Mesh().NewProducer(mesh.ProducerOptions{})
	var recs []mesh.Record
	for i := range 100 {
		recs = append(recs, mesh.Record{Topic: topic, Partition: 0, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("confidential-value-%d", i))})
	}
	if _, err := p.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	for i, r := range next(t, ctx, sub, len(recs)) {
		if r.Offset != int64(i) || !bytes.Equal(r.Value, recs[i].Value) {
			t.Fatalf("record %d: offset %d value %q", i, r.Offset, r.Value)
		}
	}
	if c.Nodes[other].PartitionActive(topic, 0) {
		t.Fatal("the subscriber's node streams the partition itself, not over the mesh")
	}

	conns := 0
	for n, r := range relays {
		sent, answered := r.Seen()
		for i := range sent {
			conns++
			if !relay.IsTLS(sent[i]) || !relay.IsTLS(answered[i]) {
				t.Fatalf("node %d's relay, connection %d: opens with % x from the dialler and % x from the node, want TLS handshake records (16 03)",
					n, i, sent[i][:min(8, len(sent[i]))], answered[i][:min(8, len(answered[i]))])
			}
			for _, b := range [][]byte{sent[i], answered[i]} {
				if bytes.Contains(b, []byte(topic)) || bytes.Contains(b, []byte("confidential-value-")) {
					t.Fatalf("node %d's relay, connection %d: the topic's name or a record's value in the clear", n, i)
				}
			}
		}
	}
	// At least the subscriber's node to the owner and back, and the
	// producer's node to the owner.
	if conns < 3 {
		t.Fatalf("%d connections crossed the relays, want at least 3", conns)
	}

	cfg := c.Configs[0]
	cfg.Node.ID = 3
	cfg.Cluster.GossipKeys = []string{base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{8}, 32))}
	cfg.Cluster.Remote, cfg.Cluster.AdvertiseRemote = "127.0.0.1:0", ""
	cfg.Cluster.Join = []string{c.Nodes[0].GossipAddr()}
	if n, err := node.Start(cfg, node.Options{Logger: testenv.Logger()}); err == nil {
		n.Crash()
		t.Fatal("a node with another gossip key started")
	} else if !strings.Contains(err.Error(), "cluster.gossip_keys") {
		t.Fatalf("a node with another gossip key: %v, want an error naming cluster.gossip_keys", err)
	}
	for i, n := range c.Nodes {
		if got := len(n.Registry().Nodes()); got != 3 {
			t.Fatalf("node %d lists %d brokers after the refusal, want 3", i, got)
		}
	}
}

// freeAddr is a loopback address nothing listens on, for now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
