package config

import (
	"fmt"
	"strings"
	"time"
)

// MQTT configures the MQTT mapper: an MQTT 3.1.1 and 5 broker whose
// messages, retained messages and sessions are Kafka topics.
type MQTT struct {
	// Listen is the host:port of the MQTT listener (TCP, or TLS with
	// TLS set); empty: no MQTT listener.
	Listen string `yaml:"listen"`
	// Advertise is the host:port MQTT clients are told about (the status
	// page, logs); empty: Listen.
	Advertise string `yaml:"advertise"`
	// WebSocket is the host:port of a listener serving MQTT over
	// WebSocket at the path /mqtt; empty: none.
	WebSocket string `yaml:"websocket"`
	// TLS, when set, serves Listen and WebSocket over TLS (client
	// certificates as in kafka.listeners' tls).
	TLS *TLS `yaml:"tls,omitempty"`
	// AllowAnonymous admits a CONNECT without a username. A username is
	// always checked against security.users, and a client certificate
	// (tls.client_auth) stands for a username.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// MaxPacketSize bounds one packet's size as the client sends it; a
	// larger one is refused (0x95) before it is read.
	MaxPacketSize Size `yaml:"max_packet_size"`
	// MaxConnections bounds the MQTT connections of the node; 0: from the
	// process's open-file limit.
	MaxConnections int `yaml:"max_connections"`
	// MaxInflight is the Receive Maximum: how many QoS 1 and 2 publishes
	// may wait for acknowledgement, each way, per session.
	MaxInflight int `yaml:"max_inflight"`
	// MaxQueuedBytes bounds what waits to be written to one client; past
	// it QoS 0 messages are dropped (and counted) and QoS 1 and 2 wait in
	// the Kafka log.
	MaxQueuedBytes Size `yaml:"max_queued_bytes"`
	// MaxKeepAlive bounds the keep alive a client asks for (MQTT 5's
	// Server Keep Alive tells it the bound); 0 keep alive is allowed
	// only when this is 0.
	MaxKeepAlive Duration `yaml:"max_keep_alive"`
	// MaxSessionExpiry bounds the session expiry interval a client asks
	// for; what a 3.1.1 client without clean session gets.
	MaxSessionExpiry Duration `yaml:"max_session_expiry"`
	// TopicAliasMaximum is how many topic aliases a client may set on
	// its publishes (MQTT 5); 0: none.
	TopicAliasMaximum int `yaml:"topic_alias_maximum"`
	// QoS0Acks is the acks QoS 0 publishes are produced with: none (the
	// default) or leader. The client never waits: QoS 0 has no answer.
	QoS0Acks string `yaml:"qos0_acks"`
	// Topics names the Kafka topics the mapper keeps its data in.
	Topics MQTTTopics `yaml:"topics"`
	// Routes send publishes whose topic name matches a filter to another
	// Kafka topic, and subscriptions of that filter read it; the first
	// route that matches wins, and the messages topic takes the rest.
	Routes []MQTTRoute `yaml:"routes,omitempty"`
}

// MQTTTopics are the mapper's Kafka topics.
type MQTTTopics struct {
	// Messages takes every publish no route sends elsewhere, keyed by its
	// MQTT topic name.
	Messages string `yaml:"messages"`
	// Retained holds the retained message of each topic name (compacted).
	Retained string `yaml:"retained"`
	// Sessions holds each persistent session's state by client id
	// (compacted).
	Sessions string `yaml:"sessions"`
	// Create creates the three topics at start when upstream lacks them
	// (and allows it), with Partitions partitions (0: upstream's default)
	// and Replication replicas (0: upstream's default).
	Create      bool  `yaml:"create"`
	Partitions  int32 `yaml:"partitions"`
	Replication int16 `yaml:"replication"`
}

// MQTTRoute maps an MQTT topic filter to a Kafka topic.
type MQTTRoute struct {
	Filter string `yaml:"filter"`
	Topic  string `yaml:"topic"`
	// ValueFormat json converts: publishes carry JSON documents, written
	// to the topic in ValueSchema's format (Confluent's wire format), and
	// subscribers get each record's value as JSON, decoded by the schema
	// id in it. Empty: payloads as they are.
	ValueFormat string `yaml:"value_format"`
	// ValueSchema names the schema publishes are encoded with.
	ValueSchema *HTTPValueSchema `yaml:"value_schema,omitempty"`
}

func defaultMQTT() MQTT {
	return MQTT{
		AllowAnonymous:    true,
		MaxPacketSize:     MiB,
		MaxInflight:       64,
		MaxQueuedBytes:    MiB,
		MaxKeepAlive:      Duration(0),
		MaxSessionExpiry:  Duration(7 * 24 * time.Hour),
		TopicAliasMaximum: 64,
		QoS0Acks:          "none",
		Topics: MQTTTopics{
			Messages: "mqtt-messages",
			Retained: "mqtt-retained",
			Sessions: "mqtt-sessions",
			Create:   true,
		},
	}
}

func (v *validator) validateMQTT(m MQTT) {
	if m.Listen != "" {
		v.hostPort("mqtt.listen", m.Listen, addrRules{})
	}
	if m.Advertise != "" {
		v.hostPort("mqtt.advertise", m.Advertise, addrRules{needHost: true})
	}
	if m.WebSocket != "" {
		v.hostPort("mqtt.websocket", m.WebSocket, addrRules{})
	}
	if m.TLS != nil {
		v.validateTLS("mqtt.tls", *m.TLS, true)
	}
	// The remaining length is at most 268,435,455 bytes, plus at most five
	// bytes of fixed header.
	v.sizeRange("mqtt.max_packet_size", m.MaxPacketSize, 64, 268435460)
	v.intRange("mqtt.max_connections", int64(m.MaxConnections))
	v.intRange("mqtt.max_inflight", int64(m.MaxInflight))
	v.sizeRange("mqtt.max_queued_bytes", m.MaxQueuedBytes, 4*KiB, 64*GiB)
	v.durationRange("mqtt.max_keep_alive", m.MaxKeepAlive, 0, 65535*time.Second)
	v.durationRange("mqtt.max_session_expiry", m.MaxSessionExpiry, 0, 4294967295*time.Second)
	v.intRange("mqtt.topic_alias_maximum", int64(m.TopicAliasMaximum))
	v.oneOf("mqtt.qos0_acks", m.QoS0Acks, "none", "leader")
	topics := map[string]string{}
	for _, t := range []struct{ path, name string }{
		{"mqtt.topics.messages", m.Topics.Messages},
		{"mqtt.topics.retained", m.Topics.Retained},
		{"mqtt.topics.sessions", m.Topics.Sessions},
	} {
		if msg := checkTopic(t.name); msg != "" {
			v.add(t.path, "%s", msg)
			continue
		}
		if other, dup := topics[t.name]; dup {
			v.add(t.path, "must differ from %s (both %q)", other, t.name)
			continue
		}
		topics[t.name] = t.path
	}
	v.intRange("mqtt.topics.partitions", int64(m.Topics.Partitions))
	v.intRange("mqtt.topics.replication", int64(m.Topics.Replication))
	for i, r := range m.Routes {
		path := fmt.Sprintf("mqtt.routes[%d]", i)
		if msg := CheckMQTTFilter(r.Filter); msg != "" {
			v.add(path+".filter", "%s", msg)
		}
		if msg := checkTopic(r.Topic); msg != "" {
			v.add(path+".topic", "%s", msg)
		} else if t := r.Topic; t == m.Topics.Retained || t == m.Topics.Sessions {
			v.add(path+".topic", "must not be the retained or sessions topic, got %q", t)
		}
		v.validateMQTTValueFormat(path, r)
		if r.Topic == m.Topics.Messages && r.ValueFormat != "" {
			v.add(path+".value_format", "the messages topic (%q) takes publishes no route converts: route to a topic of its own", r.Topic)
		}
		for j, o := range m.Routes[:i] {
			if o.Topic == r.Topic && o.ValueFormat != r.ValueFormat {
				v.add(path+".value_format", "routes to one topic must agree on value_format: mqtt.routes[%d] to %q has %q, this one %q",
					j, r.Topic, o.ValueFormat, r.ValueFormat)
				break
			}
		}
	}
}

// validateMQTTValueFormat checks a route's value_format and value_schema.
func (v *validator) validateMQTTValueFormat(path string, r MQTTRoute) {
	if r.ValueFormat == "" {
		if r.ValueSchema != nil {
			v.add(path+".value_schema", "a value schema needs value_format: json")
		}
		return
	}
	if r.ValueFormat != ValueFormatJSON {
		v.add(path+".value_format", "must be json (or absent: payloads as they are), got %q", r.ValueFormat)
		return
	}
	// That the node has a registry is checked when it starts, as for
	// HTTP routes.
	if r.ValueSchema == nil {
		v.add(path+".value_format", "a route with value_format json needs value_schema, the subject publishes are encoded with")
		return
	}
	v.validateValueSchema(path, *r.ValueSchema)
}

// CheckMQTTFilter says what is wrong with an MQTT topic filter, or "":
// not empty, "+" and "#" each a whole level, "#" only last.
func CheckMQTTFilter(f string) string {
	if f == "" {
		return "must not be empty"
	}
	if strings.ContainsRune(f, 0) {
		return fmt.Sprintf("must not contain a NUL character, got %q", f)
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return fmt.Sprintf("'#' must be the last level, got %q", f)
		case l != "#" && l != "+" && strings.ContainsAny(l, "#+"):
			return fmt.Sprintf("'+' and '#' must each be a whole level, got %q", f)
		}
	}
	return ""
}
