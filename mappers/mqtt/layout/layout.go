// Package layout is how an MQTT publish is kept in Kafka, and read back:
// the record's key is the MQTT topic name, its value the payload, and
// the publish's QoS and MQTT 5 properties are headers (docs/mqtt.md).
// A Kafka producer that writes records this way reaches MQTT subscribers;
// one that writes a bare key and value reaches them as a QoS 0 publish
// with no properties.
package layout

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/meshka/meshka/mesh"
)

// Header names meshka gives a publish's attributes. MQTT user properties
// keep their own names, except names that begin with "mqtt:", which are
// kept as "mqtt:user:<name>" so they cannot pass for these.
const (
	HeaderQoS           = "mqtt:qos"            // "0", "1" or "2"
	HeaderContentType   = "mqtt:content-type"   // MQTT 5 Content Type
	HeaderPayloadFormat = "mqtt:payload-format" // "1": UTF-8 text (MQTT 5 Payload Format Indicator)
	HeaderExpiresAt     = "mqtt:expires-at"     // Unix ms when the message expires (MQTT 5 Message Expiry Interval, made absolute)
	HeaderResponseTopic = "mqtt:response-topic" // MQTT 5 Response Topic
	HeaderCorrelation   = "mqtt:correlation"    // MQTT 5 Correlation Data (bytes)
	HeaderClient        = "mqtt:client"         // the publishing client's id (for no-local subscriptions)
	HeaderRetain        = "mqtt:retain"         // "1": published with the retain flag (for retain-as-published)
	userPrefix          = "mqtt:user:"
	reserved            = "mqtt:"
)

// Record is the Kafka record of pk, a PUBLISH from client, received at
// now, for kafkaTopic; its partition is left to the key (-1).
func Record(pk *packets.Packet, client, kafkaTopic string, now time.Time) mesh.Record {
	r := mesh.Record{Topic: kafkaTopic, Partition: -1, Key: []byte(pk.TopicName), Value: pk.Payload, Timestamp: now}
	add := func(k string, v []byte) { r.Headers = append(r.Headers, mesh.Header{Key: k, Value: v}) }
	if q := pk.FixedHeader.Qos; q > 0 {
		add(HeaderQoS, []byte{'0' + q})
	}
	if client != "" {
		add(HeaderClient, []byte(client))
	}
	if pk.FixedHeader.Retain {
		add(HeaderRetain, []byte("1"))
	}
	p := &pk.Properties
	if p.ContentType != "" {
		add(HeaderContentType, []byte(p.ContentType))
	}
	if p.PayloadFormatFlag && p.PayloadFormat == 1 {
		add(HeaderPayloadFormat, []byte("1"))
	}
	if p.MessageExpiryInterval > 0 {
		at := now.Add(time.Duration(p.MessageExpiryInterval) * time.Second).UnixMilli()
		add(HeaderExpiresAt, []byte(strconv.FormatInt(at, 10)))
	}
	if p.ResponseTopic != "" {
		add(HeaderResponseTopic, []byte(p.ResponseTopic))
	}
	if len(p.CorrelationData) > 0 {
		add(HeaderCorrelation, p.CorrelationData)
	}
	for _, u := range p.User {
		k := u.Key
		if strings.HasPrefix(k, reserved) {
			k = userPrefix + k
		}
		add(k, []byte(u.Val))
	}
	return r
}

// Publish is the PUBLISH that delivers r at now, at most at QoS max (a
// subscription's); expired says the message's expiry has passed, and it
// is then not to be delivered. The remaining expiry interval is what is
// left of the original, as MQTT 5 asks.
func Publish(r *mesh.Record, max byte, now time.Time) (pk packets.Packet, expired bool, err error) {
	pk.FixedHeader.Type = packets.Publish
	// mochi's encoder leaves out Response Topic and Correlation Data
	// unless told: a server that got them passes them on [MQTT-3.3.2-15]
	// [MQTT-3.3.2-16].
	pk.Mods.AllowResponseInfo = true
	pk.TopicName = string(r.Key)
	pk.Payload = r.Value
	qos := byte(0)
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderQoS:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 2 {
				return pk, false, fmt.Errorf("layout: header %s %q: want 0, 1 or 2", HeaderQoS, v)
			}
			qos = byte(n)
		case HeaderClient:
			pk.Origin = v
		case HeaderRetain:
			pk.FixedHeader.Retain = v == "1"
		case HeaderContentType:
			pk.Properties.ContentType = v
		case HeaderPayloadFormat:
			if v == "1" {
				pk.Properties.PayloadFormat, pk.Properties.PayloadFormatFlag = 1, true
			}
		case HeaderExpiresAt:
			at, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return pk, false, fmt.Errorf("layout: header %s %q: want Unix milliseconds", HeaderExpiresAt, v)
			}
			left := time.UnixMilli(at).Sub(now)
			if left <= 0 {
				return pk, true, nil
			}
			pk.Properties.MessageExpiryInterval = uint32((left + time.Second - 1) / time.Second)
		case HeaderResponseTopic:
			pk.Properties.ResponseTopic = v
		case HeaderCorrelation:
			pk.Properties.CorrelationData = h.Value
		default:
			k := h.Key
			if rest, ok := strings.CutPrefix(k, userPrefix); ok {
				k = rest
			} else if strings.HasPrefix(k, reserved) {
				continue // a meshka header this version does not know
			}
			pk.Properties.User = append(pk.Properties.User, packets.UserProperty{Key: k, Val: v})
		}
	}
	pk.FixedHeader.Qos = min(qos, max)
	return pk, false, nil
}
