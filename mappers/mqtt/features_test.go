package mqtt_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/mappers/mqtt/wire"
)

// Wildcards at the first level do not match topic names starting with
// $; a filter naming the $ level does.
func TestDollarTopics(t *testing.T) {
	_, addr := start(t)
	wild := connect5(t, addr, "wild", nil)
	wild.subscribe(t, paho.SubscribeOptions{Topic: "#", QoS: 1}, paho.SubscribeOptions{Topic: "+/stats", QoS: 1})
	sys := connect5(t, addr, "sys", nil)
	sys.subscribe(t, paho.SubscribeOptions{Topic: "$SYS/#", QoS: 1})
	pub := connect5(t, addr, "p", nil)
	pub.publish(t, &paho.Publish{Topic: "$SYS/stats", QoS: 1, Payload: []byte("sys")})
	if p := sys.next(t); p.Topic != "$SYS/stats" {
		t.Fatalf("$SYS/# got %s", p.Topic)
	}
	pub.publish(t, &paho.Publish{Topic: "plain/stats", QoS: 1, Payload: []byte("plain")})
	for range 2 { // # and +/stats both match plain/stats
		if p := wild.next(t); p.Topic != "plain/stats" {
			t.Fatalf("a first-level wildcard got %s", p.Topic)
		}
	}
	wild.none(t, 300*time.Millisecond)
}

// Overlapping subscriptions each deliver a copy, at the subscription's
// QoS, with its own subscription identifier.
func TestOverlappingSubscriptions(t *testing.T) {
	_, addr := start(t)
	c := connect5(t, addr, "o", nil)
	for id, f := range map[int]string{1: "home/+/temp", 2: "home/#"} {
		if _, err := c.Subscribe(t.Context(), &paho.Subscribe{Properties: &paho.SubscribeProperties{SubscriptionIdentifier: ptr(id)},
			Subscriptions: []paho.SubscribeOptions{{Topic: f, QoS: byte(id - 1)}}}); err != nil {
			t.Fatal(err)
		}
	}
	connect5(t, addr, "p", nil).publish(t, &paho.Publish{Topic: "home/kitchen/temp", QoS: 1, Payload: []byte("22")})
	got := map[int]byte{}
	for range 2 {
		p := c.next(t)
		got[*p.Properties.SubscriptionIdentifier] = p.QoS
	}
	if len(got) != 2 || got[1] != 0 || got[2] != 1 {
		t.Fatalf("copies by subscription identifier and QoS: %v, want 1:0 2:1", got)
	}
}

// Retain as published: such a subscription sees the retain flag of live
// messages; unsubscribing stops deliveries.
func TestRetainAsPublishedAndUnsubscribe(t *testing.T) {
	_, addr := start(t)
	c := connect5(t, addr, "rap", nil)
	c.subscribe(t, paho.SubscribeOptions{Topic: "r/#", QoS: 1, RetainAsPublished: true, RetainHandling: 2})
	pub := connect5(t, addr, "p", nil)
	pub.publish(t, &paho.Publish{Topic: "r/1", QoS: 1, Retain: true, Payload: []byte("kept")})
	if p := c.next(t); !p.Retain {
		t.Fatal("retain as published: the flag was cleared")
	}
	ua, err := c.Unsubscribe(t.Context(), &paho.Unsubscribe{Topics: []string{"r/#", "never/subscribed"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ua.Reasons) != 2 || ua.Reasons[0] != 0 || ua.Reasons[1] != 0x11 {
		t.Fatalf("UNSUBACK reasons %x, want [00 11]", ua.Reasons)
	}
	pub.publish(t, &paho.Publish{Topic: "r/1", QoS: 1, Payload: []byte("after")})
	c.none(t, 500*time.Millisecond)
}

// CONNACK tells an MQTT 5 client what meshka decided: an assigned client
// identifier for an empty one, the server keep alive when its own was
// longer than mqtt.max_keep_alive, and the bounds it works within.
func TestConnackProperties(t *testing.T) {
	_, addr := start(t, func(cfg *config.Config) { cfg.MQTT.MaxKeepAlive = config.Duration(20 * time.Second) })
	c := connect5(t, addr, "", func(cp *paho.Connect) { cp.KeepAlive = 600 })
	p := c.connack.Properties
	if p == nil || !strings.HasPrefix(p.AssignedClientID, "meshka-") {
		t.Fatalf("assigned client id %+v", p)
	}
	if p.ServerKeepAlive == nil || *p.ServerKeepAlive != 20 {
		t.Errorf("server keep alive %v, want 20", p.ServerKeepAlive)
	}
	if p.ReceiveMaximum == nil || *p.ReceiveMaximum != 64 || p.MaximumPacketSize == nil || *p.MaximumPacketSize != 1<<20 ||
		p.TopicAliasMaximum == nil || *p.TopicAliasMaximum != 64 {
		t.Errorf("bounds %+v", p)
	}
}

// A filter that is not one is refused in the SUBACK (0x8F; 3.1.1 0x80),
// the others in the same SUBSCRIBE granted.
func TestInvalidFilterRefused(t *testing.T) {
	_, addr := start(t)
	c := connect5(t, addr, "f", nil)
	sa, _ := c.Subscribe(t.Context(), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "a/#/b", QoS: 1}, {Topic: "ok/+", QoS: 1}, {Topic: "x+", QoS: 0}}})
	if sa == nil || fmt.Sprintf("%x", sa.Reasons) != "8f018f" {
		t.Fatalf("SUBACK %+v, want reasons 8f 01 8f", sa)
	}
	raw := dialRaw(t, addr)
	raw.connect(wire.V311, "f3", 30)
	raw.send(pkt(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: wire.V311, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: "a/#/b", Qos: 1}, {Filter: "ok", Qos: 2}}}))
	if ack := raw.expect(wire.V311, packets.Suback); fmt.Sprintf("%x", ack.ReasonCodes) != "8002" {
		t.Fatalf("3.1.1 SUBACK %x, want 80 02", ack.ReasonCodes)
	}
}

// A connection whose keep alive passed publishes its will.
func TestWillOnKeepAlive(t *testing.T) {
	_, addr := start(t)
	w := connect5(t, addr, "w", nil)
	w.subscribe(t, paho.SubscribeOptions{Topic: "gone/#", QoS: 1})
	raw := dialRaw(t, addr)
	raw.send(pkt(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: wire.V311,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 1, ClientIdentifier: "silent",
			WillFlag: true, WillTopic: "gone/silent", WillPayload: []byte("timed out"), WillQos: 1}}))
	raw.expectReason(wire.V311, packets.Connack, 0)
	// and then says nothing
	if p := w.next(t); p.Topic != "gone/silent" || string(p.Payload) != "timed out" {
		t.Fatalf("will %s %q", p.Topic, p.Payload)
	}
}

// QoS 0 messages to a client that does not read are dropped once its
// outbox is full, and counted; the node and other clients go on.
func TestQoS0DroppedForASlowClient(t *testing.T) {
	env, addr := start(t, func(cfg *config.Config) { cfg.MQTT.MaxQueuedBytes = 4 * config.KiB })
	slow := dialRaw(t, addr)
	slow.connect(wire.V311, "slow", 0)
	slow.send(pkt(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: wire.V311, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: "flood/#", Qos: 0}}}))
	slow.expect(wire.V311, packets.Suback)
	// the slow client reads nothing more from here
	fast := connect5(t, addr, "fast", nil)
	fast.subscribe(t, paho.SubscribeOptions{Topic: "flood/#", QoS: 0})
	pub := connect5(t, addr, "p", nil)
	payload := make([]byte, 16<<10)
	const n = 200
	for i := range n {
		pub.publish(t, &paho.Publish{Topic: "flood/x", QoS: 0, Payload: payload})
		if i%50 == 49 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(500 * time.Millisecond) // the fast client's outbox empties
	pub.publish(t, &paho.Publish{Topic: "flood/end", QoS: 0, Payload: []byte("end")})
	for {
		if p := fast.next(t); p.Topic == "flood/end" {
			break
		}
	}
	var conns, published, delivered, dropped int
	d := brokerOf(t, env.Node).Health().Detail
	if _, err := fmt.Sscanf(d, "%d connections, %d published, %d delivered, %d QoS 0 dropped", &conns, &published, &delivered, &dropped); err != nil {
		t.Fatalf("health %q: %v", d, err)
	}
	if dropped == 0 {
		t.Fatalf("health %q: nothing dropped for the client that does not read", d)
	}
}
