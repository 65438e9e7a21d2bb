package mqtt_test

import (
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/meshka/meshka/mappers/mqtt/wire"
)

// persistentConnect is a 3.1.1 CONNECT without clean session: its
// session outlives the connection.
func persistentConnect(t testing.TB, clientID string) []byte {
	return pkt(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: wire.V311,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Keepalive: 30, ClientIdentifier: clientID}})
}

// A QoS 2 publish is written to Kafka once, however often its packet id
// is sent again before PUBREL: on the same connection, and after the
// client reconnects (to its persistent session) without having seen the
// PUBREC.
func TestQoS2ExactlyOnce(t *testing.T) {
	env, addr := start(t)
	c := dialRaw(t, addr)
	c.send(persistentConnect(t, "q2"))
	c.expectReason(wire.V311, packets.Connack, 0)
	pub := publishPacket(wire.V311, []byte("q2/a"), 2, 7, []byte("once"))
	c.send(pub)
	c.expect(wire.V311, packets.Pubrec)
	dup := append([]byte(nil), pub...)
	dup[0] |= 0x08 // DUP
	c.send(dup)
	if pk := c.expect(wire.V311, packets.Pubrec); pk.PacketID != 7 {
		t.Fatalf("PUBREC for %d", pk.PacketID)
	}
	// Reconnect as a client that lost the PUBREC would, and send it again.
	c.nc.Close()
	time.Sleep(200 * time.Millisecond)
	c2 := dialRaw(t, addr)
	c2.send(persistentConnect(t, "q2"))
	if ack := c2.expectReason(wire.V311, packets.Connack, 0); !ack.SessionPresent {
		t.Fatal("no session present")
	}
	c2.send(dup)
	c2.expect(wire.V311, packets.Pubrec)
	c2.send(pkt(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel, Qos: 1}, ProtocolVersion: wire.V311, PacketID: 7}))
	if pk := c2.expect(wire.V311, packets.Pubcomp); pk.PacketID != 7 {
		t.Fatalf("PUBCOMP for %d", pk.PacketID)
	}
	// Now the id is free again: a new publish with it is a new message.
	c2.send(publishPacket(wire.V311, []byte("q2/a"), 2, 7, []byte("twice")))
	c2.expect(wire.V311, packets.Pubrec)
	recs := consume(t, env, "mqtt-messages", 2)
	if string(recs[0].Value) != "once" || string(recs[1].Value) != "twice" {
		t.Fatalf("records %q, %q", recs[0].Value, recs[1].Value)
	}
	more := consumeWithin(t, env, "mqtt-messages", 3, 2*time.Second)
	if len(more) != 2 {
		t.Fatalf("%d records, want 2: a duplicate was written", len(more))
	}
}
