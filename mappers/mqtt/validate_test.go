package mqtt_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
)

// startChecked is start with a topics rule: the values of mqtt-messages
// are Avro records of subject users-value; it returns the schema's id.
func startChecked(t *testing.T) (*testenv.Env, string, int) {
	t.Helper()
	src, id := testenv.AvroUsers(t, "users-value")
	env := testenv.StartWithSchemasUpstream(t, src, []kfake.Opt{mqttTopics}, withMQTT, func(c *config.Config) {
		c.Topics = []config.TopicRule{{Topic: "mqtt-messages", ValidateProduce: true,
			Value: &config.FormatSpec{Format: "avro", Subject: "users-value", SchemaID: "record"}}}
	})
	return env, brokerOf(t, env.Node).Addr().String(), id
}

// An MQTT 5 publish whose record the topics rules refuse is answered 0x99
// with the reason (QoS 1) or dropped (QoS 0), and is not written; the
// valid ones around it are.
func TestPublishInvalidRecord(t *testing.T) {
	env, addr, id := startChecked(t)
	c := connect5(t, addr, "checked", nil)
	valid := testenv.AvroUser(id, "ann", 30)
	if r := c.publish(t, &paho.Publish{Topic: "users/ann", QoS: 1, Payload: valid}); r.ReasonCode != 0 {
		t.Fatalf("valid publish: reason 0x%x", r.ReasonCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := c.Publish(ctx, &paho.Publish{Topic: "users/bad", QoS: 1, Payload: valid[:4]})
	if err == nil || r == nil || r.ReasonCode != 0x99 || r.Properties == nil || !strings.Contains(r.Properties.ReasonString, "value") {
		t.Fatalf("invalid publish: %+v, %v; want reason 0x99 naming the value", r, err)
	}
	c.publish(t, &paho.Publish{Topic: "users/bad", QoS: 0, Payload: []byte("not avro")})
	last := testenv.AvroUser(id, "bob", 40)
	c.publish(t, &paho.Publish{Topic: "users/ann", QoS: 1, Payload: last})

	got := consume(t, env, "mqtt-messages", 2)
	if !bytes.Equal(got[0].Value, valid) || !bytes.Equal(got[1].Value, last) {
		t.Fatalf("upstream holds %x, %x; want the two valid records", got[0].Value, got[1].Value)
	}
	if more := consumeWithin(t, env, "mqtt-messages", 3, 2*time.Second); len(more) != 2 {
		t.Fatalf("upstream holds %d records, want 2", len(more))
	}
}

// MQTT 3.1.1 has no negative PUBACK: a QoS 1 publish the rules refuse
// closes the connection, and is not written.
func TestPublishInvalidRecord311(t *testing.T) {
	env, addr, id := startChecked(t)
	c := connect3(t, addr, "checked3")
	c.publish(t, "users/ann", 1, false, string(testenv.AvroUser(id, "ann", 30)))
	c.Publish("users/bad", 1, false, "not avro")
	select {
	case <-c.lost:
	case <-time.After(20 * time.Second):
		t.Fatal("the connection is still open")
	}
	if got := consumeWithin(t, env, "mqtt-messages", 2, 2*time.Second); len(got) != 1 {
		t.Fatalf("upstream holds %d records, want 1", len(got))
	}
}

// With validate_fetch, an MQTT subscriber is not sent the records the
// rule refuses, written by a Kafka producer that meshka did not check;
// the valid ones around them come in order.
func TestSubscriberSkipsInvalidRecords(t *testing.T) {
	src, id := testenv.AvroUsers(t, "users-value")
	env := testenv.StartWithSchemasUpstream(t, src, []kfake.Opt{mqttTopics}, withMQTT, func(c *config.Config) {
		c.Topics = []config.TopicRule{{Topic: "mqtt-messages", ValidateFetch: true,
			Value: &config.FormatSpec{Format: "avro", Subject: "users-value", SchemaID: "record"}}}
	})
	sub := connect5(t, brokerOf(t, env.Node).Addr().String(), "reader", nil)
	sub.subscribe(t, paho.SubscribeOptions{Topic: "users/#", QoS: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kc := env.DirectClient(t)
	ann, bob := testenv.AvroUser(id, "ann", 30), testenv.AvroUser(id, "bob", 40)
	for _, v := range [][]byte{ann, []byte("not avro"), testenv.AvroUser(id+1, "eve", 1), bob} {
		if err := kc.ProduceSync(ctx, &kgo.Record{Topic: "mqtt-messages", Partition: 0, Key: []byte("users/x"), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range [][]byte{ann, bob} {
		if p := sub.next(t); !bytes.Equal(p.Payload, want) {
			t.Fatalf("the subscriber got %x, want %x", p.Payload, want)
		}
	}
	sub.none(t, time.Second)
	if n := env.Node.Mesh().SkippedInvalid(); n != 2 {
		t.Fatalf("skipped %d records, want 2", n)
	}
}

// With an external registry (another node's built-in one) that stops, an
// MQTT 5 publish whose schema the node has not read is not called
// invalid: 0x80 (unspecified error) with the reason, not 0x99, and it is
// not written; a schema already read still checks.
func TestPublishRegistryUnavailable(t *testing.T) {
	reg, url := testenv.StartRegistry(t, "", "")
	rcl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v1, err := rcl.CreateSchema(ctx, "users-value", sr.Schema{Schema: testenv.UserSchema})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := rcl.CreateSchema(ctx, "users-value", sr.Schema{Schema: `{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"},{"name":"nick","type":"string","default":""}]}`})
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.StartWith(t, []kfake.Opt{mqttTopics}, withMQTT, func(c *config.Config) {
		c.Schema.Registry.URL = config.URLs{url}
		c.Schema.Registry.Timeout = config.Duration(time.Second)
		c.Topics = []config.TopicRule{{Topic: "mqtt-messages", ValidateProduce: true,
			Value: &config.FormatSpec{Format: "avro", Subject: "users-value", SchemaID: "record"}}}
	})
	c := connect5(t, brokerOf(t, env.Node).Addr().String(), "unchecked", nil)
	first := testenv.AvroUser(v1.ID, "ann", 30)
	if r := c.publish(t, &paho.Publish{Topic: "users/ann", QoS: 1, Payload: first}); r.ReasonCode != 0 {
		t.Fatalf("valid publish: reason 0x%x", r.ReasonCode)
	}
	reg.StopNode(t)
	r, err := c.Publish(ctx, &paho.Publish{Topic: "users/new", QoS: 1, Payload: testenv.AvroUser(v2.ID, "new", 1)})
	if err == nil || r == nil || r.ReasonCode != 0x80 || r.Properties == nil || !strings.Contains(r.Properties.ReasonString, "could not be checked") {
		t.Fatalf("registry stopped, a schema not read: %+v, %v; want reason 0x80, could not be checked", r, err)
	}
	last := testenv.AvroUser(v1.ID, "bob", 40)
	if r := c.publish(t, &paho.Publish{Topic: "users/ann", QoS: 1, Payload: last}); r.ReasonCode != 0 {
		t.Fatalf("registry stopped, a schema read: reason 0x%x", r.ReasonCode)
	}
	if got := consumeWithin(t, env, "mqtt-messages", 3, 2*time.Second); len(got) != 2 || !bytes.Equal(got[0].Value, first) || !bytes.Equal(got[1].Value, last) {
		t.Fatalf("upstream holds %d records, want the 2 checked", len(got))
	}
	if got := metricValue(t, env, "meshka_mqtt_messages_refused_total", "reason", "unchecked"); got != 1 {
		t.Errorf("refused as unchecked: %v, want 1", got)
	}
	if got := metricValue(t, env, "meshka_mqtt_messages_refused_total", "reason", "invalid_record"); got != 0 {
		t.Errorf("refused as invalid: %v, want 0", got)
	}
}

// metricValue is the counter or gauge of family name whose label is
// value in the node's registry; 0 when it has none.
func metricValue(t *testing.T, env *testenv.Env, name, label, value string) float64 {
	t.Helper()
	families, err := env.Node.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
