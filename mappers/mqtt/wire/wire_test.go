package wire_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/meshka/meshka/mappers/mqtt/wire"
)

func encode(t testing.TB, pk packets.Packet) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := wire.Encode(&buf, &pk); err != nil {
		t.Fatalf("encode %d: %v", pk.FixedHeader.Type, err)
	}
	return buf.Bytes()
}

func samples(v byte) []packets.Packet {
	fh := func(typ, qos byte) packets.FixedHeader { return packets.FixedHeader{Type: typ, Qos: qos} }
	pk := func(p packets.Packet) packets.Packet { p.ProtocolVersion = v; return p }
	connect := pk(packets.Packet{FixedHeader: fh(packets.Connect, 0), Connect: packets.ConnectParams{
		ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 30, ClientIdentifier: "sensor-1",
		UsernameFlag: true, Username: []byte("dev"), PasswordFlag: true, Password: []byte("dev-secret")}})
	if v == wire.V311 {
		connect.Connect.ProtocolName = []byte("MQTT")
	}
	out := []packets.Packet{
		connect,
		pk(packets.Packet{FixedHeader: fh(packets.Connack, 0), ReasonCode: 0}),
		pk(packets.Packet{FixedHeader: fh(packets.Publish, 0), TopicName: "sensors/1/temp", Payload: []byte("21.5")}),
		pk(packets.Packet{FixedHeader: fh(packets.Publish, 1), TopicName: "sensors/1/temp", PacketID: 7, Payload: []byte("21.6")}),
		pk(packets.Packet{FixedHeader: fh(packets.Puback, 0), PacketID: 7}),
		pk(packets.Packet{FixedHeader: fh(packets.Pubrec, 0), PacketID: 8}),
		pk(packets.Packet{FixedHeader: fh(packets.Pubrel, 1), PacketID: 8}),
		pk(packets.Packet{FixedHeader: fh(packets.Pubcomp, 0), PacketID: 8}),
		pk(packets.Packet{FixedHeader: fh(packets.Subscribe, 1), PacketID: 9, Filters: packets.Subscriptions{{Filter: "sensors/+/temp", Qos: 1}}}),
		pk(packets.Packet{FixedHeader: fh(packets.Suback, 0), PacketID: 9, ReasonCodes: []byte{1}}),
		pk(packets.Packet{FixedHeader: fh(packets.Unsubscribe, 1), PacketID: 10, Filters: packets.Subscriptions{{Filter: "sensors/+/temp"}}}),
		pk(packets.Packet{FixedHeader: fh(packets.Pingreq, 0)}),
		pk(packets.Packet{FixedHeader: fh(packets.Pingresp, 0)}),
		pk(packets.Packet{FixedHeader: fh(packets.Disconnect, 0)}),
	}
	if v == wire.V5 {
		out = append(out, pk(packets.Packet{FixedHeader: fh(packets.Unsuback, 0), PacketID: 10, ReasonCodes: []byte{0}}),
			pk(packets.Packet{FixedHeader: fh(packets.Auth, 0), ReasonCode: 0x18}))
		out[2].Properties.ContentType = "text/plain"
		out[2].Properties.User = []packets.UserProperty{{Key: "site", Val: "north"}}
	}
	return out
}

// Every packet type, MQTT 3.1.1 and 5, written back to back on one
// stream, reads back as written.
func TestReadWhatWasWritten(t *testing.T) {
	for _, v := range []byte{wire.V311, wire.V5} {
		var stream bytes.Buffer
		want := samples(v)
		for _, pk := range want {
			stream.Write(encode(t, pk))
		}
		r := wire.NewReader(&stream, 1<<20)
		r.SetVersion(v)
		for i, w := range want {
			got, err := r.Read()
			if err != nil {
				t.Fatalf("v%d packet %d (type %d): %v", v, i, w.FixedHeader.Type, err)
			}
			if got.FixedHeader.Type != w.FixedHeader.Type || got.PacketID != w.PacketID || got.TopicName != w.TopicName ||
				!bytes.Equal(got.Payload, w.Payload) {
				t.Fatalf("v%d packet %d: read %+v, wrote %+v", v, i, got, w)
			}
			if v == wire.V5 && got.Properties.ContentType != w.Properties.ContentType {
				t.Fatalf("v5 packet %d: content type %q, wrote %q", i, got.Properties.ContentType, w.Properties.ContentType)
			}
		}
		if _, err := r.Read(); err != io.EOF {
			t.Fatalf("v%d after the last packet: %v, want io.EOF", v, err)
		}
	}
}

// endless is a stream that would give the reader as many bytes as it
// asked for: a reader that believed a size prefix would allocate it.
type endless struct{ read int }

func (e *endless) Read(p []byte) (int, error) { e.read += len(p); return len(p), nil }

// repeating is a stream of one byte, again and again.
type repeating struct {
	b    byte
	read int
}

func (r *repeating) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.b
	}
	r.read += len(p)
	return len(p), nil
}

// A CONNECT too large to read is refused at the version it names, when
// it is MQTT 5, so the client can be told why in a CONNACK it reads.
func TestOversizeConnectVersion(t *testing.T) {
	for _, v := range []byte{wire.V311, wire.V5} {
		pk := samples(v)[0]
		pk.Connect.ClientIdentifier = string(bytes.Repeat([]byte("c"), 200))
		r := wire.NewReader(bytes.NewReader(encode(t, pk)), 128)
		_, err := r.Read()
		refusedWith(t, err, 0x95)
		if r.Version() != v {
			t.Errorf("an oversize CONNECT of version %d: the reader's version is %d", v, r.Version())
		}
	}
}

func refusedWith(t *testing.T, err error, code byte) {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) || we.Code.Code != code {
		t.Fatalf("got %v, want reason code 0x%02x", err, code)
	}
}

// A packet announcing more than the bound is refused with 0x95 before its
// body is read; a remaining length of more than four bytes is malformed
// (0x81); a body cut short is io.ErrUnexpectedEOF; reserved flags, type
// 0 and AUTH under 3.1.1 are refused, and so is a CONNECT of a protocol
// level other than 4 and 5 (0x84).
func TestRefusals(t *testing.T) {
	big := io.MultiReader(bytes.NewReader([]byte{0x30, 0xff, 0xff, 0xff, 0x7f}), &endless{})
	_, err := wire.NewReader(big, 1<<20).Read()
	refusedWith(t, err, 0x95)

	_, err = wire.NewReader(bytes.NewReader([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}), 1<<20).Read()
	refusedWith(t, err, 0x81)
	// a fifth length byte is malformed even when the value is in range
	_, err = wire.NewReader(bytes.NewReader([]byte{0xc0, 0x80, 0x80, 0x80, 0x80, 0x00}), 1<<20).Read()
	refusedWith(t, err, 0x81)
	// and a run of continuation bytes ends at the fifth
	run := &repeating{b: 0x80}
	_, err = wire.NewReader(io.MultiReader(bytes.NewReader([]byte{0x30}), run), 1<<20).Read()
	refusedWith(t, err, 0x81)
	if run.read > 4096 {
		t.Errorf("read %d bytes of a remaining length", run.read)
	}

	pub := encode(t, samples(wire.V311)[2])
	_, err = wire.NewReader(bytes.NewReader(pub[:len(pub)-2]), 1<<20).Read()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a truncated PUBLISH: %v", err)
	}
	_, err = wire.NewReader(bytes.NewReader([]byte{0xc1, 0x00}), 1<<20).Read() // PINGREQ with a reserved flag
	refusedWith(t, err, 0x81)
	_, err = wire.NewReader(bytes.NewReader([]byte{0x00, 0x00}), 1<<20).Read()
	refusedWith(t, err, 0x82)
	_, err = wire.NewReader(bytes.NewReader([]byte{0xf0, 0x00}), 1<<20).Read() // AUTH under 3.1.1
	refusedWith(t, err, 0x82)
	_, err = wire.NewReader(bytes.NewReader([]byte{0x36, 0x02, 0x00, 0x00}), 1<<20).Read() // QoS 3
	refusedWith(t, err, 0x82)
	// an MQTT 5 SUBSCRIBE whose last filter has no options byte (the
	// codec reads past the body): malformed, not a panic
	r5 := wire.NewReader(bytes.NewReader([]byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x00, 0x01, 'a'}), 1<<20)
	r5.SetVersion(wire.V5)
	_, err = r5.Read()
	refusedWith(t, err, 0x81)

	// a protocol level of neither 3.1.1 nor 5 is refused as such, whatever
	// follows it
	v6 := encode(t, samples(wire.V5)[0])
	v6[8] = 6
	_, err = wire.NewReader(bytes.NewReader(v6), 1<<20).Read()
	refusedWith(t, err, 0x84)
}

// Any bytes read as packets end in a packet, an error or io.EOF, never
// a panic, and never allocate past the bound.
func FuzzReadPacket(f *testing.F) {
	for _, v := range []byte{wire.V311, wire.V5} {
		for _, pk := range samples(v) {
			f.Add(v, encode(f, pk))
		}
	}
	f.Add(wire.V5, []byte{0x30, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, v byte, in []byte) {
		r := wire.NewReader(bytes.NewReader(in), 4096)
		if v == wire.V5 {
			r.SetVersion(wire.V5)
		}
		for range 64 {
			pk, err := r.Read()
			if err != nil {
				return
			}
			var buf bytes.Buffer
			_ = wire.Encode(&buf, &pk) // whatever decodes encodes without a panic
		}
	})
}

// The version a CONNECT names is the connection's from then on: an MQTT
// 5 PUBLISH after an MQTT 5 CONNECT reads with its properties, with no
// SetVersion.
func TestConnectSetsTheVersion(t *testing.T) {
	v5 := samples(wire.V5)
	var stream bytes.Buffer
	stream.Write(encode(t, v5[0]))
	stream.Write(encode(t, v5[2]))
	r := wire.NewReader(&stream, 1<<20)
	if pk, err := r.Read(); err != nil || pk.ProtocolVersion != wire.V5 {
		t.Fatalf("CONNECT: version %d, %v", pk.ProtocolVersion, err)
	}
	pk, err := r.Read()
	if err != nil || pk.Properties.ContentType != "text/plain" || len(pk.Properties.User) != 1 {
		t.Fatalf("PUBLISH after an MQTT 5 CONNECT: %+v, %v", pk.Properties, err)
	}
}
