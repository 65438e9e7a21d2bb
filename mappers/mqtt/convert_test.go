package mqtt_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	tavro "github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
	httpmap "github.com/meshka/meshka/mappers/http"
)

const readingAvro = `{"type":"record","name":"Reading","fields":[
	{"name":"sensor","type":"string"},
	{"name":"celsius","type":"double"},
	{"name":"note","type":["null","string"],"default":null}]}`

type reading struct {
	Sensor  string  `avro:"sensor" json:"sensor"`
	Celsius float64 `avro:"celsius" json:"celsius"`
	Note    *string `avro:"note" json:"note"`
}

// startConverting runs a node serving MQTT with a route converting JSON
// payloads to Avro records of subject readings-value in the topic
// readings, and HTTP with the built-in registry and an SSE route
// presenting that topic as JSON; it returns the MQTT address, the HTTP
// base URL and the registered schema.
func startConverting(t *testing.T) (*testenv.Env, string, string, sr.SubjectSchema) {
	t.Helper()
	env := testenv.StartWith(t, []kfake.Opt{mqttTopics, kfake.SeedTopics(3, "readings")}, withMQTT, func(cfg *config.Config) {
		cfg.HTTP.Listen = "127.0.0.1:0"
		cfg.HTTP.SchemaRegistry.Enabled = true
		cfg.HTTP.Routes = []config.HTTPRoute{{Method: "GET", Path: "/readings", Topic: "readings", Capability: "stream", ValueFormat: "json"}}
		cfg.MQTT.Routes = []config.MQTTRoute{{Filter: "sensors/#", Topic: "readings", ValueFormat: "json",
			ValueSchema: &config.HTTPValueSchema{Subject: "readings-value"}}}
	})
	hb, ok := env.Node.Binding("http")
	if !ok {
		t.Fatal("no HTTP binding")
	}
	base := "http://" + hb.(*httpmap.Server).Addr().String()
	cl, err := sr.NewClient(sr.URLs(base))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ss, err := cl.CreateSchema(ctx, "readings-value", sr.Schema{Schema: readingAvro})
	if err != nil {
		t.Fatal(err)
	}
	return env, brokerOf(t, env.Node).Addr().String(), base, ss
}

// An MQTT client publishes JSON to a route whose topic holds Avro: a
// franz-go consumer decodes the record with the registered schema (sr's
// Serde) and gets the same data; an SSE client and an MQTT subscriber get
// it back as JSON. A document the schema does not take is answered 0x99
// and not written; a record in the topic that does not decode is not sent
// to the MQTT subscriber.
func TestPublishJSONToAvroTopic(t *testing.T) {
	env, addr, base, ss := startConverting(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/readings", nil)
	stream, err := http.DefaultClient.Do(req)
	if err != nil || stream.StatusCode != 200 {
		t.Fatalf("stream: %v %v", stream, err)
	}
	defer stream.Body.Close()
	sub := connect5(t, addr, "dashboard", nil)
	sub.subscribe(t, paho.SubscribeOptions{Topic: "sensors/#", QoS: 1})

	// A raw record first: the subscriber is not sent it.
	kc := env.DirectClient(t)
	if err := kc.ProduceSync(ctx, &kgo.Record{Topic: "readings", Key: []byte("sensors/raw"), Value: []byte("not avro")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	pub := connect5(t, addr, "sensor-7", nil)
	doc := `{"sensor": "boiler", "celsius": 81.5, "note": "after service"}`
	if r := pub.publish(t, &paho.Publish{Topic: "sensors/boiler", QoS: 1, Payload: []byte(doc)}); r.ReasonCode != 0 {
		t.Fatalf("publish: reason 0x%x", r.ReasonCode)
	}
	r, err := pub.Publish(ctx, &paho.Publish{Topic: "sensors/boiler", QoS: 1, Payload: []byte(`{"sensor": "boiler", "celsius": "hot"}`)})
	if err == nil || r == nil || r.ReasonCode != 0x99 || r.Properties == nil || !strings.Contains(r.Properties.ReasonString, "schema") {
		t.Fatalf("a document the schema does not take: %+v, %v; want reason 0x99 naming the schema", r, err)
	}

	var rec *kgo.Record // the readings partitions' order is not the produce order
	for _, r := range consume(t, env, "readings", 2) {
		if string(r.Key) == "sensors/boiler" {
			rec = r
		}
	}
	if rec == nil {
		t.Fatal("no record of sensors/boiler in the topic")
	}
	var serde sr.Serde
	serde.Register(ss.ID, reading{}, sr.DecodeFn(avroDecode(t, readingAvro)))
	var got reading
	if err := serde.Decode(rec.Value, &got); err != nil {
		t.Fatalf("franz-go's Serde cannot decode the record %x: %v", rec.Value, err)
	}
	if got.Sensor != "boiler" || got.Celsius != 81.5 || got.Note == nil || *got.Note != "after service" {
		t.Fatalf("decoded %+v", got)
	}
	if more := consumeWithin(t, env, "readings", 3, 2*time.Second); len(more) != 2 {
		t.Fatalf("the topic holds %d records, want 2: the refused document was written", len(more))
	}

	p := sub.next(t)
	if p.Topic != "sensors/boiler" || !testenv.SameJSON(t, string(p.Payload), doc) {
		t.Fatalf("the MQTT subscriber got %s %s, want the document", p.Topic, p.Payload)
	}
	if p.Properties == nil || p.Properties.ContentType != "application/json" {
		t.Fatalf("the delivery's properties %+v, want content type application/json", p.Properties)
	}
	sub.none(t, time.Second)

	// The stream sends each record's value as an event's data.
	sc := bufio.NewScanner(stream.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			if !testenv.SameJSON(t, data, doc) {
				t.Fatalf("the SSE client got %s, want the document", data)
			}
			return
		}
	}
	t.Fatalf("the stream ended before an event: %v", sc.Err())
}

// avroDecode decodes Avro payloads of schema text with twmb/avro.
func avroDecode(t *testing.T, text string) func([]byte, any) error {
	t.Helper()
	s, err := tavro.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return func(b []byte, v any) error {
		_, err := s.Decode(b, v)
		return err
	}
}
