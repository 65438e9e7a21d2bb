package mqtt_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/meshka/meshka/mappers/mqtt/wire"
)

// rawConn is a client that writes MQTT as bytes of the test's making and
// reads what the node answers packet by packet: what bad input needs.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	rd *wire.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, rd: wire.NewReader(nc, 0)}
}

// send writes bufs in one write, so the node reads them back to back.
func (c *rawConn) send(bufs ...[]byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.nc.Write(bytes.Join(bufs, nil)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read reads the node's next packet, within 20 s, decoded at version v.
func (c *rawConn) read(v byte) (packets.Packet, error) {
	c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	c.rd.SetVersion(v)
	return c.rd.Read()
}

// expect reads the next packet, which must be of type typ, decoded at
// version v.
func (c *rawConn) expect(v, typ byte) packets.Packet {
	c.t.Helper()
	pk, err := c.read(v)
	if err != nil {
		c.t.Fatalf("want packet type %d, got %v", typ, err)
	}
	if pk.FixedHeader.Type != typ {
		c.t.Fatalf("want packet type %d, got %s", typ, describe(pk))
	}
	return pk
}

// expectReason reads the next packet, which must be of type typ with
// reason code code.
func (c *rawConn) expectReason(v, typ, code byte) packets.Packet {
	c.t.Helper()
	pk := c.expect(v, typ)
	if pk.ReasonCode != code {
		c.t.Fatalf("packet type %d: reason code 0x%02x (%q), want 0x%02x", typ, pk.ReasonCode, pk.Properties.ReasonString, code)
	}
	return pk
}

// expectClosed checks that the node closes the connection, within 20 s,
// sending nothing more.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	pk, err := c.read(wire.V5)
	switch {
	case err == nil:
		c.t.Fatalf("want the connection closed, got %s", describe(pk))
	case isTimeout(err):
		c.t.Fatal("the connection is still open after 20s")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), isReset(err):
	default:
		c.t.Fatalf("want the connection closed, got %v", err)
	}
}

// describe names a packet the node sent, for failure messages.
func describe(pk packets.Packet) string {
	return fmt.Sprintf("packet type %d (reason code 0x%02x %q, packet id %d, topic %q)", pk.FixedHeader.Type, pk.ReasonCode,
		pk.Properties.ReasonString, pk.PacketID, pk.TopicName)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && !oe.Timeout()
}

// connect sends a CONNECT of version v with a clean start and reads the
// CONNACK, which must accept it.
func (c *rawConn) connect(v byte, clientID string, keepAlive uint16) packets.Packet {
	c.t.Helper()
	c.send(connectPacket(c.t, v, clientID, keepAlive))
	return c.expectReason(v, packets.Connack, 0)
}

// pkt is pk's bytes as mochi's codecs make them, at pk's version.
func pkt(t testing.TB, pk packets.Packet) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := wire.Encode(&buf, &pk); err != nil {
		t.Fatalf("encode packet type %d: %v", pk.FixedHeader.Type, err)
	}
	return buf.Bytes()
}

// connectPacket is a CONNECT of version v with a clean start.
func connectPacket(t testing.TB, v byte, clientID string, keepAlive uint16) []byte {
	return pkt(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: v,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: keepAlive, ClientIdentifier: clientID}})
}

// publishPacket is a PUBLISH built byte by byte, so its topic name can
// be anything: a packet id when qos > 0, an empty property list under
// MQTT 5.
func publishPacket(v byte, topic []byte, qos byte, pid uint16, payload []byte) []byte {
	body := binary.BigEndian.AppendUint16(nil, uint16(len(topic)))
	body = append(body, topic...)
	if qos > 0 {
		body = binary.BigEndian.AppendUint16(body, pid)
	}
	if v == wire.V5 {
		body = append(body, 0)
	}
	body = append(body, payload...)
	return withHeader(0x30|qos<<1, body)
}

// withHeader is body behind a fixed header of the first byte given.
func withHeader(first byte, body []byte) []byte {
	out := []byte{first}
	n := len(body)
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

// bystanders are well-behaved clients of a node, an MQTT 5 one
// (paho.golang) and an MQTT 3.1.1 one (paho.mqtt.golang), connected
// before the bad input: check says that each still publishes to the
// other and receives what the other publishes.
type bystanders struct {
	v5 *client5
	v3 *client3
	n  int
}

func newBystanders(t testing.TB, addr string) *bystanders {
	t.Helper()
	b := &bystanders{v5: connect5(t, addr, "bystander-5", nil), v3: connect3(t, addr, "bystander-3")}
	b.v5.subscribe(t, paho.SubscribeOptions{Topic: "bystander/5/#", QoS: 1})
	b.v3.subscribe(t, "bystander/3/#", 1)
	return b
}

func (b *bystanders) check(t testing.TB) {
	t.Helper()
	b.n++
	to3, to5 := fmt.Sprintf("bystander/3/%d", b.n), fmt.Sprintf("bystander/5/%d", b.n)
	b.v5.publish(t, &paho.Publish{Topic: to3, QoS: 1, Payload: []byte(fmt.Sprint(b.n))})
	b.v3.publish(t, to5, 1, false, fmt.Sprint(b.n))
	if m := b.v3.next(t); m.Topic() != to3 || string(m.Payload()) != fmt.Sprint(b.n) {
		t.Fatalf("the 3.1.1 bystander got %s %q, want %s %d", m.Topic(), m.Payload(), to3, b.n)
	}
	if p := b.v5.next(t); p.Topic != to5 || string(p.Payload) != fmt.Sprint(b.n) {
		t.Fatalf("the MQTT 5 bystander got %s %q, want %s %d", p.Topic, p.Payload, to5, b.n)
	}
	select {
	case d := <-b.v5.disconnected:
		t.Fatalf("the MQTT 5 bystander was disconnected: 0x%02x", d.ReasonCode)
	case err := <-b.v3.lost:
		t.Fatalf("the 3.1.1 bystander lost its connection: %v", err)
	default:
	}
}
