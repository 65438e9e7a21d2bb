package mqtt_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/race"
	"github.com/meshka/meshka/internal/testenv"
)

// startCluster runs three nodes serving MQTT, with remoting between them,
// and returns their MQTT addresses.
func startCluster(t *testing.T) (*testenv.Cluster, []string) {
	t.Helper()
	if race.Enabled {
		t.Skip("remoting between nodes in one process: run without -race (make test does)")
	}
	c := testenv.StartClusterWith(t, 3, []kfake.Opt{mqttTopics}, withMQTT, func(cfg *config.Config) { cfg.Cluster.Remote = "127.0.0.1:0" })
	addrs := make([]string, 3)
	for i, n := range c.Nodes {
		addrs[i] = brokerOf(t, n).Addr().String()
	}
	return c, addrs
}

// A persistent session leaves node A; 1,000 QoS 1 messages are published
// meanwhile; it reconnects to node B and gets all 1,000, in order, once.
func TestRemotingSessionMovesNodes(t *testing.T) {
	_, addrs := startCluster(t)
	sub := connect5(t, addrs[0], "roamer", persistent(600))
	sub.subscribe(t, paho.SubscribeOptions{Topic: "fleet/roamer/#", QoS: 1})
	sub.Disconnect(&paho.Disconnect{})
	sub.nc.Close()

	pub := connect5(t, addrs[2], "dispatch", nil)
	const n = 1000
	for i := range n {
		pub.publish(t, &paho.Publish{Topic: "fleet/roamer/cmd", QoS: 1, Payload: []byte(fmt.Sprint(i))})
	}
	back := connect5(t, addrs[1], "roamer", persistent(600))
	if !back.connack.SessionPresent {
		t.Fatal("no session present on node B")
	}
	for i := range n {
		p := back.next(t)
		if string(p.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q", i, p.Payload)
		}
	}
	back.none(t, time.Second)
}

// A connection on node B takes over the session a connection on node A
// holds: A is told 0x8E, B has the session.
func TestRemotingTakeoverAcrossNodes(t *testing.T) {
	_, addrs := startCluster(t)
	a := connect5(t, addrs[0], "twin", persistent(600))
	a.subscribe(t, paho.SubscribeOptions{Topic: "twin/#", QoS: 1})
	b := connect5(t, addrs[1], "twin", persistent(600))
	select {
	case d := <-a.disconnected:
		if d.ReasonCode != 0x8E {
			t.Fatalf("A told 0x%02x, want 0x8E", d.ReasonCode)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("A was not told it was taken over")
	}
	if !b.connack.SessionPresent {
		t.Fatal("B has no session present")
	}
	connect5(t, addrs[2], "p", nil).publish(t, &paho.Publish{Topic: "twin/x", QoS: 1, Payload: []byte("to b")})
	if p := b.next(t); string(p.Payload) != "to b" {
		t.Fatalf("B got %q", p.Payload)
	}
}

// The node holding a session is killed; the client reconnects to a
// survivor and loses nothing that was acknowledged to its publisher:
// every message comes, some perhaps twice (at least once across a
// node's death), in order from where it resumes.
func TestRemotingSessionOwnerKilled(t *testing.T) {
	c, addrs := startCluster(t)
	sub := connect5(t, addrs[0], "survivor", persistent(600))
	sub.subscribe(t, paho.SubscribeOptions{Topic: "k/#", QoS: 1})
	pub := connect5(t, addrs[2], "pk", nil)
	const n = 200
	for i := range n / 2 {
		pub.publish(t, &paho.Publish{Topic: "k/x", QoS: 1, Payload: []byte(fmt.Sprint(i))})
	}
	seen := map[string]bool{}
	for range n / 2 {
		seen[string(sub.next(t).Payload)] = true
	}
	time.Sleep(time.Second) // past a session save
	c.Crash(0)
	for i := n / 2; i < n; i++ {
		pub.publish(t, &paho.Publish{Topic: "k/x", QoS: 1, Payload: []byte(fmt.Sprint(i))})
	}
	var back *client5
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		if back, err = dial5(t, addrs[1], "survivor", persistent(600)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect to a survivor: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !back.connack.SessionPresent {
		t.Fatal("the session was lost with its node")
	}
	for len(seen) < n {
		seen[string(back.next(t).Payload)] = true
	}
}

// A shared subscription with a member on each of 3 nodes splits the
// messages among them, none lost.
func TestRemotingSharedSubscriptionAcrossNodes(t *testing.T) {
	c, addrs := startCluster(t)
	var members []*client5
	for i, addr := range addrs {
		m := connect5(t, addr, fmt.Sprintf("m%d", i), nil)
		m.subscribe(t, paho.SubscribeOptions{Topic: "$share/g/work/#", QoS: 1})
		members = append(members, m)
	}
	waitShare(t, c.Addr(0), "mqtt-share/g/work/#", 3)
	pub := connect5(t, addrs[0], "pw", nil)
	const n = 90
	for i := range n {
		pub.publish(t, &paho.Publish{Topic: fmt.Sprintf("work/%d", i), QoS: 1, Payload: []byte(fmt.Sprint(i))})
	}
	seen := map[string]int{}
	per := make([]int, len(members))
	deadline := time.After(30 * time.Second)
	for len(seen) < n {
		select {
		case p := <-members[0].got:
			seen[string(p.Payload)]++
			per[0]++
		case p := <-members[1].got:
			seen[string(p.Payload)]++
			per[1]++
		case p := <-members[2].got:
			seen[string(p.Payload)]++
			per[2]++
		case <-deadline:
			t.Fatalf("%d of %d messages (%v)", len(seen), n, per)
		}
	}
	for k, v := range seen {
		if v != 1 {
			t.Errorf("message %s came %d times", k, v)
		}
	}
	for i, v := range per {
		if v == 0 {
			t.Errorf("member %d got nothing: %v", i, per)
		}
	}
}
