package mqtt

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshka/meshka/netguard"
)

// metrics are the MQTT mapper's figures.
type metrics struct {
	received, sent [3]prometheus.Counter // messages by QoS
	dropped        prometheus.Counter
	undecodable    prometheus.Counter                 // records of converting routes' topics not sent: their value did not decode
	refused        [refusedReasons]prometheus.Counter // publishes not written, by refusedInvalid…
	bytesIn        prometheus.Counter
	bytesOut       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, b *Broker) *metrics {
	received := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshka_mqtt_messages_received_total",
		Help: "PUBLISH packets MQTT clients sent that were taken (authorized and handed to the records API), by QoS.",
	}, []string{"qos"})
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshka_mqtt_messages_sent_total",
		Help: "PUBLISH packets queued to MQTT subscribers, by QoS (of the delivery).",
	}, []string{"qos"})
	dropped := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshka_mqtt_messages_dropped_total",
		Help: "QoS 0 deliveries dropped because the subscriber's outbox was full (mqtt.max_queued_bytes).",
	})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshka_mqtt_messages_refused_total",
		Help: "PUBLISH packets MQTT clients sent that were not written, by reason: invalid_record (the topics rules refused the record), not_authorized (no WRITE on the topic), payload_format (a UTF-8 payload that is not).",
	}, []string{"reason"})
	undecodable := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshka_mqtt_values_undecodable_total",
		Help: "Records of a route with value_format json not sent to a subscriber because their value did not decode (not in the registry's wire format, an unknown schema id, not a value of its schema).",
	})
	m := &metrics{dropped: dropped, undecodable: undecodable}
	for q, l := range []string{"0", "1", "2"} {
		m.received[q], m.sent[q] = received.WithLabelValues(l), sent.WithLabelValues(l)
	}
	for i, l := range [refusedReasons]string{refusedInvalid: "invalid_record", refusedNotAuthorized: "not_authorized", refusedPayloadFormat: "payload_format", refusedUnchecked: "unchecked"} {
		m.refused[i] = refused.WithLabelValues(l) // every series, so the family is there before any refusal
	}
	m.bytesIn, m.bytesOut = netguard.Bytes(reg, "mqtt")
	if reg != nil {
		sessions := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meshka_mqtt_sessions",
			Help: "MQTT clients connected to this node now, each holding its session here.",
		}, func() float64 {
			b.mu.Lock()
			defer b.mu.Unlock()
			return float64(len(b.conns))
		})
		reg.MustRegister(received, sent, dropped, undecodable, refused, sessions)
	}
	return m
}

func qosIndex(q byte) int { return int(min(q, 2)) }

// The reasons of meshka_mqtt_messages_refused_total.
const (
	refusedInvalid = iota
	refusedNotAuthorized
	refusedPayloadFormat
	refusedUnchecked // the rules could not check it: its schemas cannot be read now
	refusedReasons
)
