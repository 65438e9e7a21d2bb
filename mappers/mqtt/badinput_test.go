package mqtt_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/mappers/mqtt/wire"
)

// withMaxPacketSize bounds the packets the node reads.
func withMaxPacketSize(n config.Size) testenv.Option {
	return func(cfg *config.Config) { cfg.MQTT.MaxPacketSize = n }
}

// Bad input on one connection gets the spec's reaction there — MQTT 5:
// the reason in a CONNACK or DISCONNECT, then the connection closed;
// MQTT 3.1.1, which has no reason codes past CONNECT: closed — and
// clients of the same node, 3.1.1 and 5, go on publishing and receiving.
func TestBadInput(t *testing.T) {
	env, addr := start(t, withMaxPacketSize(256))
	by := newBystanders(t, addr)
	by.check(t)

	big := bytes.Repeat([]byte("x"), 300)
	// a CONNECT of MQTT 5's layout (with a Session Expiry Interval
	// property, when expiry) naming version 6
	v6in5 := func(expiry bool) func(testing.TB) []byte {
		return func(t testing.TB) []byte {
			pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: wire.V5,
				Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 30, ClientIdentifier: "v6"}}
			if expiry {
				pk.Properties.SessionExpiryInterval, pk.Properties.SessionExpiryIntervalFlag = 60, true
			}
			b := pkt(t, pk)
			if string(b[2:9]) != "\x00\x04MQTT\x05" {
				t.Fatalf("CONNECT starts % x", b[:9])
			}
			b[8] = 6
			return b
		}
	}
	subscribe := func(t testing.TB) []byte {
		return pkt(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: wire.V311,
			PacketID: 1, Filters: packets.Subscriptions{{Filter: "a/#"}}})
	}
	bytesOf := func(b []byte) func(testing.TB) []byte { return func(testing.TB) []byte { return b } }
	cases := []struct {
		name string
		// the version of the CONNECT sent (and accepted) before the bad
		// input; 0: none
		v    byte
		send func(testing.TB) []byte
		// what the node answers before it closes: a packet type (0:
		// nothing), its reason code, and the version it is decoded at
		answer, code, at byte
	}{
		{name: "MQTT 5 PUBLISH over mqtt.max_packet_size", v: wire.V5,
			send: bytesOf(publishPacket(wire.V5, []byte("big"), 0, 0, big)), answer: packets.Disconnect, code: 0x95},
		{name: "MQTT 3.1.1 PUBLISH over mqtt.max_packet_size", v: wire.V311,
			send: bytesOf(publishPacket(wire.V311, []byte("big"), 1, 1, big))},
		{name: "MQTT 5 CONNECT over mqtt.max_packet_size",
			send:   func(t testing.TB) []byte { return connectPacket(t, wire.V5, string(big), 30) },
			answer: packets.Connack, code: 0x95, at: wire.V5},
		{name: "MQTT 3.1.1 CONNECT over mqtt.max_packet_size",
			send: func(t testing.TB) []byte { return connectPacket(t, wire.V311, string(big), 30) }},

		{name: "MQTT 5 remaining length of five bytes", v: wire.V5,
			send: bytesOf([]byte{0xc0, 0x80, 0x80, 0x80, 0x80, 0x00}), answer: packets.Disconnect, code: 0x81},
		{name: "MQTT 5 remaining length past its maximum", v: wire.V5,
			send: bytesOf([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x7f}), answer: packets.Disconnect, code: 0x81},
		{name: "MQTT 3.1.1 remaining length of five bytes", v: wire.V311,
			send: bytesOf([]byte{0xc0, 0x80, 0x80, 0x80, 0x80, 0x00})},
		{name: "remaining length of five bytes before CONNECT",
			send: bytesOf([]byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x00})},

		{name: "MQTT 5 topic name of invalid UTF-8", v: wire.V5,
			send: bytesOf(publishPacket(wire.V5, []byte("a/\xff\xfe"), 0, 0, []byte("x"))), answer: packets.Disconnect, code: 0x81},
		{name: "MQTT 5 topic name with U+0000", v: wire.V5,
			send: bytesOf(publishPacket(wire.V5, []byte("a/\x00b"), 1, 1, []byte("x"))), answer: packets.Disconnect, code: 0x81},
		{name: "MQTT 3.1.1 topic name of invalid UTF-8", v: wire.V311,
			send: bytesOf(publishPacket(wire.V311, []byte("a/\xc3"), 1, 1, []byte("x")))},

		// ErrProtocolViolationSurplusWildcard, 0x82 [MQTT-3.3.2-2]
		{name: "MQTT 5 topic name with +", v: wire.V5,
			send: bytesOf(publishPacket(wire.V5, []byte("a/+"), 0, 0, []byte("x"))), answer: packets.Disconnect, code: 0x82},
		{name: "MQTT 5 topic name with #", v: wire.V5,
			send: bytesOf(publishPacket(wire.V5, []byte("a/#"), 1, 1, []byte("x"))), answer: packets.Disconnect, code: 0x82},
		{name: "MQTT 3.1.1 topic name with +", v: wire.V311,
			send: bytesOf(publishPacket(wire.V311, []byte("a/+"), 0, 0, []byte("x")))},

		// [MQTT-3.1.0-2]
		{name: "MQTT 5 second CONNECT", v: wire.V5,
			send: func(t testing.TB) []byte { return connectPacket(t, wire.V5, "again", 30) }, answer: packets.Disconnect, code: 0x82},
		{name: "MQTT 3.1.1 second CONNECT", v: wire.V311,
			send: func(t testing.TB) []byte { return connectPacket(t, wire.V311, "again", 30) }},

		// [MQTT-3.1.0-1]: closed, with no CONNACK
		{name: "PUBLISH before CONNECT", send: bytesOf(publishPacket(wire.V311, []byte("a/b"), 0, 0, []byte("x")))},
		{name: "PINGREQ before CONNECT", send: bytesOf([]byte{0xc0, 0x00})},
		{name: "SUBSCRIBE before CONNECT", send: subscribe},

		// A version the node does not speak: MQTT 3.1.1's CONNACK with
		// return code 0x01 [MQTT-3.1.2-2], which a client of any version
		// can read, then closed (MQTT 5's 0x84 is a MAY, in a CONNACK
		// only a version 5 client reads).
		{name: "CONNECT of version 6",
			send:   func(t testing.TB) []byte { return connectPacket(t, 6, "v6", 30) },
			answer: packets.Connack, code: 0x01, at: wire.V311},
		{name: "CONNECT of version 6 in MQTT 5's layout", send: v6in5(false), answer: packets.Connack, code: 0x01, at: wire.V311},
		{name: "CONNECT of version 6 with MQTT 5 properties", send: v6in5(true), answer: packets.Connack, code: 0x01, at: wire.V311},
		{name: "CONNECT of version 3 named MQTT",
			send:   func(t testing.TB) []byte { return connectPacket(t, 3, "v3", 30) },
			answer: packets.Connack, code: 0x01, at: wire.V311},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			if tc.v != 0 {
				c.connect(tc.v, fmt.Sprintf("bad-%d", i), 30)
			}
			c.send(tc.send(t))
			if tc.answer != 0 {
				at := tc.at
				if at == 0 {
					at = tc.v
				}
				pk := c.expectReason(at, tc.answer, tc.code)
				if tc.answer == packets.Connack && at == wire.V311 && pk.FixedHeader.Remaining != 2 {
					t.Errorf("CONNACK of %d bytes, want MQTT 3.1.1's 2", pk.FixedHeader.Remaining)
				}
			}
			c.expectClosed()
			by.check(t)
			if h := brokerOf(t, env.Node).Health(); !h.OK {
				t.Fatalf("the broker is not healthy: %s", h.Detail)
			}
		})
	}
}

// A client that sends nothing for one and a half times its keep alive is
// disconnected (MQTT 5: 0x8D first) [MQTT-3.1.2-22], and not before its
// keep alive passed; a client of the same keep alive that pings stays.
func TestKeepAliveEndsASilentClient(t *testing.T) {
	_, addr := start(t)
	pinger := connect5(t, addr, "pinger", func(cp *paho.Connect) { cp.KeepAlive = 1 })
	pinger.subscribe(t, paho.SubscribeOptions{Topic: "pinger/#", QoS: 1})
	pingerFrom := time.Now()

	silent5, silent3 := dialRaw(t, addr), dialRaw(t, addr)
	silent5.connect(wire.V5, "silent-5", 1)
	from5 := time.Now()
	silent3.connect(wire.V311, "silent-3", 1)
	from3 := time.Now()

	silent5.expectReason(wire.V5, packets.Disconnect, 0x8D)
	silent5.expectClosed()
	took5 := time.Since(from5)
	silent3.expectClosed()
	took3 := time.Since(from3)
	for v, took := range map[string]time.Duration{"MQTT 5": took5, "MQTT 3.1.1": took3} {
		// 1.5 s after the node's last read, less what the CONNACK's way
		// took; the upper bound is only generous
		if took < time.Second || took > 10*time.Second {
			t.Errorf("the silent %s client was closed after %v, want about 1.5s", v, took)
		}
	}

	if d := 3*time.Second - time.Since(pingerFrom); d > 0 {
		time.Sleep(d) // the pinger outlives three of its keep alives
	}
	pinger.publish(t, &paho.Publish{Topic: "pinger/1", QoS: 1, Payload: []byte("still here")})
	if p := pinger.next(t); p.Topic != "pinger/1" {
		t.Fatalf("the pinger got %s", p.Topic)
	}
	select {
	case d := <-pinger.disconnected:
		t.Fatalf("the pinger was disconnected: 0x%02x", d.ReasonCode)
	default:
	}
}

// holdProduces holds every Produce request upstream gets from now on
// until release is called (at the latest at the test's end); held gets
// a value when one is held.
func holdProduces(t testing.TB, env *testenv.Env) (held <-chan struct{}, release func()) {
	h, rel := make(chan struct{}, 1), make(chan struct{})
	up := env.Upstream
	up.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		select {
		case <-rel:
			up.DropControl()
			return nil, nil, false
		default:
		}
		up.KeepControl()
		select {
		case h <- struct{}{}:
		default:
		}
		up.SleepControl(func() { <-rel })
		return nil, nil, false // then handled as usual
	})
	release = sync.OnceFunc(func() { close(rel) })
	t.Cleanup(release)
	return h, release
}

func withMaxInflight(n int) testenv.Option {
	return func(cfg *config.Config) { cfg.MQTT.MaxInflight = n }
}

// An MQTT 5 client with more QoS 1 publishes unanswered than the
// CONNACK's Receive Maximum is disconnected with 0x93: upstream holds
// the first publish's record, so the second comes while it is
// unanswered.
func TestReceiveMaximumExceeded(t *testing.T) {
	env, addr := start(t, withMaxInflight(1))
	by := newBystanders(t, addr)
	_, release := holdProduces(t, env)

	c := dialRaw(t, addr)
	ca := c.connect(wire.V5, "greedy", 30)
	if ca.Properties.ReceiveMaximum != 1 {
		t.Fatalf("CONNACK Receive Maximum %d, want 1", ca.Properties.ReceiveMaximum)
	}
	c.send(publishPacket(wire.V5, []byte("greedy/1"), 1, 1, []byte("1")), publishPacket(wire.V5, []byte("greedy/2"), 1, 2, []byte("2")))
	c.expectReason(wire.V5, packets.Disconnect, 0x93)
	c.expectClosed()
	release()
	by.check(t)
}

// MQTT 3.1.1 has no Receive Maximum to tell a client, so a client that
// sends more QoS 1 publishes than mqtt.max_inflight before their
// answers is not cut off: it is read no further until an answer frees a
// slot, and each publish is written and answered, in order.
func TestV311PipelinedPublishes(t *testing.T) {
	env, addr := start(t, withMaxInflight(1))
	held, release := holdProduces(t, env)

	c := dialRaw(t, addr)
	c.connect(wire.V311, "pipeliner", 30)
	var pubs [][]byte
	for i := 1; i <= 3; i++ {
		pubs = append(pubs, publishPacket(wire.V311, fmt.Appendf(nil, "pipe/%d", i), 1, uint16(i), fmt.Append(nil, i)))
	}
	c.send(pubs...)
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the first publish did not reach upstream within 20s")
	}
	time.Sleep(200 * time.Millisecond) // the node reads the second meanwhile
	release()
	for i := 1; i <= 3; i++ {
		if pk := c.expect(wire.V311, packets.Puback); pk.PacketID != uint16(i) {
			t.Fatalf("PUBACK %d, want %d", pk.PacketID, i)
		}
	}
	c.send([]byte{0xc0, 0x00})
	c.expect(wire.V311, packets.Pingresp)
	keys := map[string]string{}
	for _, r := range consume(t, env, "mqtt-messages", 3) {
		keys[string(r.Key)] = string(r.Value)
	}
	for i := 1; i <= 3; i++ {
		if k := fmt.Sprintf("pipe/%d", i); keys[k] != fmt.Sprint(i) {
			t.Errorf("records %v, want %s = %d", keys, k, i)
		}
	}
}
