package layout_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/meshka/meshka/mappers/mqtt/layout"
	"github.com/meshka/meshka/mesh"
)

// A publish with every MQTT 5 property becomes a record keyed by its
// topic name and comes back as the same publish, its expiry interval
// what is left of it.
func TestPublishRoundTrip(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	in := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "sensors/1/temp", PacketID: 3,
		Payload: []byte("21.5"), Properties: packets.Properties{ContentType: "text/plain", PayloadFormat: 1, PayloadFormatFlag: true,
			MessageExpiryInterval: 60, ResponseTopic: "replies/1", CorrelationData: []byte{1, 2, 3},
			User: []packets.UserProperty{{Key: "site", Val: "north"}, {Key: "site", Val: "south"}, {Key: "mqtt:qos", Val: "spoof"}}}}
	r := layout.Record(&in, "sensor-1", "mqtt-messages", now)
	if r.Topic != "mqtt-messages" || string(r.Key) != "sensors/1/temp" || string(r.Value) != "21.5" || r.Partition != -1 {
		t.Fatalf("record %+v", r)
	}
	if v, _ := r.HeaderValue(layout.HeaderQoS); string(v) != "1" {
		t.Fatalf("qos header %q", v)
	}
	out, expired, err := layout.Publish(&r, 2, now.Add(15*time.Second))
	if err != nil || expired {
		t.Fatal(expired, err)
	}
	p := out.Properties
	if out.TopicName != in.TopicName || !bytes.Equal(out.Payload, in.Payload) || out.FixedHeader.Qos != 1 || out.Origin != "sensor-1" ||
		p.ContentType != "text/plain" || !p.PayloadFormatFlag || p.ResponseTopic != "replies/1" || !bytes.Equal(p.CorrelationData, []byte{1, 2, 3}) {
		t.Fatalf("publish %+v", out)
	}
	if p.MessageExpiryInterval != 45 {
		t.Fatalf("expiry interval %d s after 15 s of 60, want 45", p.MessageExpiryInterval)
	}
	if len(p.User) != 3 || p.User[0] != (packets.UserProperty{Key: "site", Val: "north"}) || p.User[1].Val != "south" ||
		p.User[2] != (packets.UserProperty{Key: "mqtt:qos", Val: "spoof"}) {
		t.Fatalf("user properties %+v", p.User)
	}
	if _, expired, _ := layout.Publish(&r, 2, now.Add(61*time.Second)); !expired {
		t.Fatal("delivered after its expiry")
	}
	if down, _, _ := layout.Publish(&r, 0, now); down.FixedHeader.Qos != 0 {
		t.Fatalf("a QoS 0 subscription got QoS %d", down.FixedHeader.Qos)
	}
}

// The publish Publish makes carries every property on the wire: its
// encoding, decoded, has them all (mochi's encoder drops Response Topic
// and Correlation Data unless the packet allows them).
func TestPublishEncodesItsProperties(t *testing.T) {
	now := time.Now()
	in := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "requests/1", PacketID: 3,
		Payload: []byte("ping"), Properties: packets.Properties{ContentType: "text/plain", PayloadFormat: 1, PayloadFormatFlag: true,
			MessageExpiryInterval: 60, ResponseTopic: "replies/1", CorrelationData: []byte{1, 2, 3},
			User: []packets.UserProperty{{Key: "site", Val: "north"}}}}
	r := layout.Record(&in, "client-1", "mqtt-messages", now)
	out, _, err := layout.Publish(&r, 1, now)
	if err != nil {
		t.Fatal(err)
	}
	out.ProtocolVersion, out.PacketID = 5, 9
	var buf bytes.Buffer
	if err := out.PublishEncode(&buf); err != nil {
		t.Fatal(err)
	}
	var got packets.Packet
	if err := got.FixedHeader.Decode(buf.Bytes()[0]); err != nil {
		t.Fatal(err)
	}
	got.ProtocolVersion = 5
	if err := got.PublishDecode(buf.Bytes()[2:]); err != nil {
		t.Fatal(err)
	}
	p := got.Properties
	if got.TopicName != "requests/1" || p.ContentType != "text/plain" || !p.PayloadFormatFlag || p.MessageExpiryInterval != 60 ||
		p.ResponseTopic != "replies/1" || !bytes.Equal(p.CorrelationData, []byte{1, 2, 3}) || len(p.User) != 1 {
		t.Fatalf("decoded %s with properties %+v", got.TopicName, p)
	}
}

// A record a Kafka producer wrote with a key and a value only is a QoS 0
// publish with no properties; meshka headers it does not know are
// skipped; a malformed QoS header is an error.
func TestKafkaRecords(t *testing.T) {
	r := mesh.Record{Key: []byte("alerts/fire"), Value: []byte("!"),
		Headers: []mesh.Header{{Key: "trace", Value: []byte("abc")}, {Key: "mqtt:future", Value: []byte("x")}}}
	pk, expired, err := layout.Publish(&r, 2, time.Now())
	if err != nil || expired || pk.FixedHeader.Qos != 0 || pk.TopicName != "alerts/fire" || len(pk.Properties.User) != 1 ||
		pk.Properties.User[0].Key != "trace" {
		t.Fatalf("%+v %v %v", pk, expired, err)
	}
	bad := mesh.Record{Key: []byte("a"), Headers: []mesh.Header{{Key: layout.HeaderQoS, Value: []byte("7")}}}
	if _, _, err := layout.Publish(&bad, 2, time.Now()); err == nil {
		t.Fatal("QoS 7 accepted")
	}
}

// FuzzPublish: whatever headers a Kafka producer put on a record, it
// becomes a PUBLISH that encodes, or is refused with an error; never a
// panic.
func FuzzPublish(f *testing.F) {
	f.Add("mqtt:qos", "1", "mqtt:expires-at", "99999999999999", "a/b", []byte("v"))
	f.Add("mqtt:qos", "7", "mqtt:payload-format", "1", "", []byte{})
	f.Add("mqtt:user:mqtt:qos", "x", "mqtt:correlation", "\x00", "$SYS/x", []byte("p"))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, key string, value []byte) {
		r := mesh.Record{Key: []byte(key), Value: value, Headers: []mesh.Header{{Key: k1, Value: []byte(v1)}, {Key: k2, Value: []byte(v2)}}}
		for _, version := range []byte{4, 5} {
			pk, expired, err := layout.Publish(&r, 2, time.Now())
			if err != nil || expired {
				continue
			}
			pk.ProtocolVersion = version
			if pk.FixedHeader.Qos > 0 {
				pk.PacketID = 1
			}
			var buf bytes.Buffer
			pk.PublishEncode(&buf) // must not panic; an error is a record not sent
		}
	})
}
