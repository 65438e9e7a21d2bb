package mqtt_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
)

// An MQTT publish is a record of the messages topic keyed by its topic
// name, with its QoS and properties as headers, read by a Kafka client.
func TestPublishIsAKafkaRecord(t *testing.T) {
	env, addr := start(t)
	c := connect5(t, addr, "pub-1", nil)
	c.publish(t, &paho.Publish{Topic: "sensors/1/temp", QoS: 1, Payload: []byte("21.5"),
		Properties: &paho.PublishProperties{ContentType: "text/plain", ResponseTopic: "replies/1", CorrelationData: []byte{1, 2},
			User: paho.UserProperties{{Key: "unit", Value: "C"}}}})
	recs := consume(t, env, "mqtt-messages", 1)
	r := recs[0]
	if string(r.Key) != "sensors/1/temp" || string(r.Value) != "21.5" {
		t.Fatalf("record %q = %q", r.Key, r.Value)
	}
	for k, want := range map[string]string{"mqtt:qos": "1", "mqtt:client": "pub-1", "mqtt:content-type": "text/plain",
		"mqtt:response-topic": "replies/1", "mqtt:correlation": "\x01\x02", "unit": "C"} {
		if got, ok := header(r, k); !ok || got != want {
			t.Errorf("header %s = %q (present %v), want %q", k, got, ok, want)
		}
	}
}

// A record a Kafka producer writes, keyed by a topic name, reaches the
// MQTT subscribers whose filters match the key, and only those.
func TestKafkaRecordReachesSubscribers(t *testing.T) {
	env, addr := start(t)
	a := connect5(t, addr, "sub-a", nil)
	b := connect5(t, addr, "sub-b", nil)
	a.subscribe(t, paho.SubscribeOptions{Topic: "sensors/+/temp", QoS: 0})
	b.subscribe(t, paho.SubscribeOptions{Topic: "other/#", QoS: 0})
	kc, err := kgo.NewClient(kgo.SeedBrokers(env.Node.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := kc.ProduceSync(ctx, &kgo.Record{Topic: "mqtt-messages", Key: []byte("sensors/7/temp"), Value: []byte("19"),
		Headers: []kgo.RecordHeader{{Key: "unit", Value: []byte("C")}}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p := a.next(t)
	if p.Topic != "sensors/7/temp" || !bytes.Equal(p.Payload, []byte("19")) || p.QoS != 0 {
		t.Fatalf("got %s %q qos %d", p.Topic, p.Payload, p.QoS)
	}
	if p.Properties == nil || p.Properties.User.Get("unit") != "C" {
		t.Errorf("user properties %+v, want unit=C", p.Properties)
	}
	b.none(t, 300*time.Millisecond)
}

// MQTT to MQTT at each QoS: what one client publishes reaches another's
// subscription at the lower of the two QoS.
func TestPublishSubscribeQoS(t *testing.T) {
	_, addr := start(t)
	sub := connect5(t, addr, "s", nil)
	sub.subscribe(t, paho.SubscribeOptions{Topic: "q/#", QoS: 2})
	pub := connect5(t, addr, "p", nil)
	for qos := byte(0); qos <= 2; qos++ {
		pub.publish(t, &paho.Publish{Topic: "q/" + string('0'+qos), QoS: qos, Payload: []byte{'0' + qos}})
		got := sub.next(t)
		if got.Topic != "q/"+string('0'+qos) || got.QoS != qos {
			t.Fatalf("got %s at QoS %d, want q/%d at %d", got.Topic, got.QoS, qos, qos)
		}
	}
}

// A route exposes an existing Kafka topic to MQTT: what a Kafka producer
// writes to it, keyed by MQTT topic name, reaches subscribers of the
// route's filter, and MQTT publishes matching it land there.
func TestRouteExposesAKafkaTopic(t *testing.T) {
	env := testenv.StartWith(t, []kfake.Opt{mqttTopics, kfake.SeedTopics(3, "telemetry")}, withMQTT, func(cfg *config.Config) {
		cfg.MQTT.Routes = []config.MQTTRoute{{Filter: "plant/+/telemetry/#", Topic: "telemetry"}}
	})
	addr := brokerOf(t, env.Node).Addr().String()
	sub := connect5(t, addr, "scada", nil)
	sub.subscribe(t, paho.SubscribeOptions{Topic: "plant/7/telemetry/#", QoS: 1})
	kc, err := kgo.NewClient(kgo.SeedBrokers(env.Node.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := kc.ProduceSync(ctx, &kgo.Record{Topic: "telemetry", Key: []byte("plant/7/telemetry/pressure"), Value: []byte("3.2bar")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if p := sub.next(t); p.Topic != "plant/7/telemetry/pressure" || string(p.Payload) != "3.2bar" {
		t.Fatalf("got %s %q", p.Topic, p.Payload)
	}
	connect5(t, addr, "rtu", nil).publish(t, &paho.Publish{Topic: "plant/8/telemetry/flow", QoS: 1, Payload: []byte("12")})
	recs := consume(t, env, "telemetry", 2)
	if string(recs[0].Key)+string(recs[1].Key) != "plant/7/telemetry/pressureplant/8/telemetry/flow" &&
		string(recs[1].Key)+string(recs[0].Key) != "plant/7/telemetry/pressureplant/8/telemetry/flow" {
		t.Fatalf("telemetry holds %q and %q", recs[0].Key, recs[1].Key)
	}
	if more := consumeWithin(t, env, "mqtt-messages", 1, time.Second); len(more) != 0 {
		t.Fatalf("a routed publish also went to mqtt-messages: %q", more[0].Key)
	}
}
