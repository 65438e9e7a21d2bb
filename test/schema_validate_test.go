package test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/node"
	"github.com/meshka/meshka/records"
	"github.com/meshka/meshka/schema"
	"github.com/meshka/meshka/schema/registry"
	"github.com/meshka/meshka/schema/validate"
	"github.com/meshka/meshka/schema/wire"
)

// schemaEnv is a node whose topics rules check the values of three topics
// against schemas registered in a registry.State: avro-users (Avro, subject
// users-value), json-users (JSON Schema) and proto-users (Protobuf), and
// plain (string keys, int32 values).
type schemaEnv struct {
	env                     *testenv.Env
	avroID, jsonID, protoID int
}

func startSchemaEnv(t *testing.T) *schemaEnv {
	st, mu := registry.New(), new(sync.RWMutex)
	register := func(subject string, typ schema.Type, text string) int {
		mu.Lock()
		defer mu.Unlock()
		recs, res, err := st.Plan(registry.Register{Subject: subject, Schema: registry.Schema{Type: typ, Schema: text}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := st.Apply(r); err != nil {
				t.Fatal(err)
			}
		}
		return res.ID
	}
	s := &schemaEnv{
		avroID:  register("users-value", schema.Avro, `{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"}]}`),
		jsonID:  register("json-users-value", schema.JSON, `{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`),
		protoID: register("proto-users-value", schema.Protobuf, `syntax = "proto3"; message User { string name = 1; int32 age = 2; }`),
	}
	value := func(format, subject string) *config.FormatSpec {
		return &config.FormatSpec{Format: format, Subject: subject, SchemaID: "record"}
	}
	s.env = testenv.StartWithSchemas(t, validate.NewStateSource(st, mu), func(c *config.Config) {
		c.Topics = []config.TopicRule{
			{Topic: "avro-users", Value: value("avro", "users-value"), ValidateProduce: true},
			{Topic: "json-users", Value: value("json", ""), ValidateProduce: true},
			{Topic: "proto-users", Value: value("protobuf", "proto-users-value"), ValidateProduce: true},
			{Prefix: "plain", Key: value("string", ""), Value: value("int32", ""), ValidateProduce: true},
		}
	})
	return s
}

func (s *schemaEnv) avro(name string, age int32) []byte {
	b := wire.Append(nil, uint32(s.avroID), nil)
	b = binary.AppendVarint(b, int64(len(name)))
	b = append(b, name...)
	return binary.AppendVarint(b, int64(age))
}

func (s *schemaEnv) json(doc string) []byte {
	return append(wire.Append(nil, uint32(s.jsonID), nil), doc...)
}

func (s *schemaEnv) proto(name string, age int32) []byte {
	b := wire.Append(nil, uint32(s.protoID), []int{0})
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(age))
}

// TestSchemaValidateProduce produces valid and invalid records with
// franz-go: the invalid ones fail with INVALID_RECORD, and upstream holds
// the valid ones alone.
func TestSchemaValidateProduce(t *testing.T) {
	s := startSchemaEnv(t)
	ctx := timeout(t, 60*time.Second)
	direct := s.env.DirectClient(t)
	for _, topic := range []string{"avro-users", "json-users", "proto-users", "plain-ints"} {
		createTopic(t, ctx, direct, topic, 1, nil)
	}
	cl := s.env.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	cases := []struct {
		topic      string
		key, value []byte
		ok         bool
	}{
		{"avro-users", nil, s.avro("ann", 30), true},
		{"avro-users", nil, s.avro("ann", 30)[:4], false},
		{"json-users", nil, s.json(`{"name":"bob"}`), true},
		{"json-users", nil, s.json(`{"age":3}`), false},
		{"json-users", nil, s.avro("ann", 30), false}, // an Avro schema's id
		{"proto-users", nil, s.proto("cy", 40), true},
		{"proto-users", nil, append(wire.Append(nil, uint32(s.protoID), []int{0}), 0x0a, 0x09, 'x'), false},
		{"plain-ints", []byte("k"), []byte{0, 0, 0, 7}, true},
		{"plain-ints", []byte("k"), []byte{0, 7}, false},
		{"plain-ints", []byte("\xc3\x28"), []byte{0, 0, 0, 7}, false},
		{"avro-users", nil, s.avro("dee", 50), true},
	}
	want := map[string][]string{}
	for i, c := range cases {
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: c.topic, Key: c.key, Value: c.value}).FirstErr()
		switch {
		case c.ok && err != nil:
			t.Fatalf("case %d (%s): %v", i, c.topic, err)
		case !c.ok && !errors.Is(err, kerr.InvalidRecord):
			t.Fatalf("case %d (%s): err %v, want INVALID_RECORD", i, c.topic, err)
		}
		if c.ok {
			want[c.topic] = append(want[c.topic], string(c.value))
		}
	}
	// Upstream, read directly, holds the valid records alone.
	for topic, values := range want {
		rd := s.env.DirectClient(t, kgo.ConsumeTopics(topic), fromStart())
		got := consumeN(t, ctx, rd, len(values))
		for i, r := range got {
			if string(r.Value) != values[i] {
				t.Errorf("%s record %d: %x, want %x", topic, i, r.Value, values[i])
			}
		}
		// Nothing more arrives.
		short := timeout(t, 300*time.Millisecond)
		if more := rd.PollFetches(short).Records(); len(more) > 0 {
			t.Errorf("%s: %d records more than the valid ones", topic, len(more))
		}
	}
}

// TestSchemaValidateRecordErrors sends one batch with two bad records in
// a raw Produce request: the partition answers INVALID_RECORD with both
// records' batch indexes and reasons (v8+), or the code alone (v7), and
// nothing of the batch reaches upstream.
func TestSchemaValidateRecordErrors(t *testing.T) {
	s := startSchemaEnv(t)
	ctx := timeout(t, 60*time.Second)
	direct := s.env.DirectClient(t)
	createTopic(t, ctx, direct, "avro-users", 1, nil)
	batch, err := records.EncodeBatch([]records.Record{
		{Value: s.avro("ann", 1)},
		{Value: s.json(`{"name":"x"}`)},
		{Value: s.avro("bob", 2)},
		{Value: []byte("plain text")},
	}, records.CodecLZ4)
	if err != nil {
		t.Fatal(err)
	}
	produce := func(cl *kgo.Client, batch []byte) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "avro-users"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0]
	}
	p := produce(s.env.Client(t), batch)
	if p.ErrorCode != kerr.InvalidRecord.Code {
		t.Fatalf("error code %d, want INVALID_RECORD", p.ErrorCode)
	}
	if len(p.ErrorRecords) != 2 || p.ErrorRecords[0].RelativeOffset != 1 || p.ErrorRecords[1].RelativeOffset != 3 {
		t.Fatalf("record errors %+v, want records 1 and 3", p.ErrorRecords)
	}
	if m := *p.ErrorRecords[0].ErrorMessage; !strings.Contains(m, "value (schema id 2): the schema is JSON, the topic wants AVRO") {
		t.Errorf("record 1: %s", m)
	}
	if m := *p.ErrorRecords[1].ErrorMessage; !strings.Contains(m, "value: not in the schema registry's wire format: bad magic byte") {
		t.Errorf("record 3: %s", m)
	}
	if p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "2 record(s)") {
		t.Errorf("error message %v", p.ErrorMessage)
	}
	// Produce v7 has no record errors: the code alone.
	old := s.env.Client(t, kgo.MaxVersions(kversion.V2_1_0()))
	if p := produce(old, batch); p.ErrorCode != kerr.InvalidRecord.Code || p.ErrorRecords != nil || p.ErrorMessage != nil {
		t.Errorf("v7: %+v", p)
	}
	// A batch whose records are valid and whose CRC is not goes on as it
	// is: the rules check records, upstream checks the batch, and answers
	// CORRUPT_MESSAGE as a broker does.
	corrupt, err := records.EncodeBatch([]records.Record{{Value: s.avro("eve", 3)}}, records.CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	corrupt[len(corrupt)-3] ^= 0x01 // "eve" is "evd": still a valid value, under another CRC
	if p := produce(s.env.Client(t), corrupt); p.ErrorCode != kerr.CorruptMessage.Code {
		t.Fatalf("a batch with a wrong CRC: %+v, want CORRUPT_MESSAGE", p)
	}
	// A good batch goes through, and is the only one upstream has.
	good, err := records.EncodeBatch([]records.Record{{Value: s.avro("ann", 1)}, {Value: s.avro("bob", 2)}}, records.CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	if p := produce(s.env.Client(t), good); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("the good batch: %+v", p)
	}
	rd := s.env.DirectClient(t, kgo.ConsumeTopics("avro-users"), fromStart())
	got := consumeN(t, ctx, rd, 2)
	if string(got[1].Value) != string(s.avro("bob", 2)) || got[0].Offset != 0 {
		t.Errorf("upstream holds %v", got)
	}
	short := timeout(t, 300*time.Millisecond)
	if more := rd.PollFetches(short).Records(); len(more) > 0 {
		t.Errorf("%d records more than the good batch's", len(more))
	}
}

// TestSchemaValidateNeedsSource: a node whose rules name a schema format
// and that has no schema source does not start.
func TestSchemaValidateNeedsSource(t *testing.T) {
	c := config.Default()
	c.Upstream.Brokers = []string{"127.0.0.1:1"}
	c.Topics = []config.TopicRule{{Topic: "t", Value: &config.FormatSpec{Format: "avro", SchemaID: "record"}, ValidateProduce: true}}
	_, err := node.Start(c, node.Options{Logger: testenv.Logger()})
	if err == nil || !strings.Contains(err.Error(), "no schema registry") {
		t.Fatalf("err %v", err)
	}
}

// With the built-in registry on and no schema source of the program's, the
// topics rules check records against the registry: a schema registered
// over HTTP with franz-go's registry client is what a Kafka producer's
// records are checked against on the same node.
func TestBuiltInRegistryValidatesProduce(t *testing.T) {
	ctx := timeout(t, 60*time.Second)
	env := testenv.Start(t, func(c *config.Config) {
		c.HTTP.Listen = "127.0.0.1:0"
		c.HTTP.SchemaRegistry.Enabled = true
		c.Topics = []config.TopicRule{{Topic: "registered", Value: &config.FormatSpec{Format: "avro", Subject: "registered-value", SchemaID: "record"}, ValidateProduce: true}}
	})
	b, _ := env.Node.Binding("http")
	rcl, err := sr.NewClient(sr.URLs("http://" + b.(interface{ Addr() net.Addr }).Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := rcl.CreateSchema(ctx, "registered-value", sr.Schema{Schema: `{"type":"record","name":"R","fields":[{"name":"n","type":"long"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	good := binary.AppendVarint(wire.Append(nil, uint32(ss.ID), nil), 42)
	bad := append(wire.Append(nil, uint32(ss.ID), nil), 0xff) // a varint cut short
	cl := env.Client(t, kgo.RecordRetries(1))
	createTopic(t, ctx, cl, "registered", 1, nil)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "registered", Value: good}).FirstErr(); err != nil {
		t.Fatalf("a record of the registered schema: %v", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "registered", Value: bad}).FirstErr(); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("a record the registered schema does not read: %v, want INVALID_RECORD", err)
	}
}

// TestSchemaValidateLargeRequest sends one Produce request large enough
// for its partitions' batches to be checked at once, on several
// goroutines: each partition is answered for its own batch (the one with
// a bad record, INVALID_RECORD naming it), in request order, and the good
// batches are written.
func TestSchemaValidateLargeRequest(t *testing.T) {
	s := startSchemaEnv(t)
	ctx := timeout(t, 60*time.Second)
	const parts, per, bad, badAt = 4, 100, 2, 57
	createTopic(t, ctx, s.env.DirectClient(t), "avro-users", parts, nil)
	name := strings.Repeat("n", 1000)
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "avro-users"
	for p := range int32(parts) {
		recs := make([]records.Record, per)
		for i := range recs {
			recs[i] = records.Record{Value: s.avro(name, int32(i))}
			if p == bad && i == badAt {
				recs[i].Value = []byte("not avro")
			}
		}
		batch, err := records.EncodeBatch(recs, records.CodecNone)
		if err != nil {
			t.Fatal(err)
		}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, batch
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, s.env.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range resp.Topics[0].Partitions {
		switch {
		case p.Partition != int32(i):
			t.Errorf("answer %d is for partition %d", i, p.Partition)
		case i == bad && (p.ErrorCode != kerr.InvalidRecord.Code || len(p.ErrorRecords) != 1 || p.ErrorRecords[0].RelativeOffset != badAt):
			t.Errorf("partition %d: %+v, want INVALID_RECORD for record %d", i, p, badAt)
		case i != bad && (p.ErrorCode != 0 || p.BaseOffset != 0):
			t.Errorf("partition %d: %+v, want written at 0", i, p)
		}
	}
	rd := s.env.DirectClient(t, kgo.ConsumeTopics("avro-users"), fromStart())
	if got := consumeN(t, ctx, rd, (parts-1)*per); len(got) != (parts-1)*per {
		t.Fatalf("upstream holds %d records", len(got))
	}
	short := timeout(t, 300*time.Millisecond)
	if more := rd.PollFetches(short).Records(); len(more) > 0 {
		t.Errorf("%d records more than the good batches'", len(more))
	}
}

// A node whose MQTT or HTTP routes convert values and that has no schema
// registry does not start, saying which route needs one; config files
// leave that to the node, since meshka dev turns the built-in registry on
// after reading them.
func TestConvertingRoutesNeedARegistry(t *testing.T) {
	up, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	for name, set := range map[string]func(*config.Config){
		"mqtt.routes[0]": func(c *config.Config) {
			c.MQTT.Listen = "127.0.0.1:0"
			c.MQTT.Routes = []config.MQTTRoute{{Filter: "s/#", Topic: "s", ValueFormat: "json", ValueSchema: &config.HTTPValueSchema{Subject: "s-value"}}}
		},
		"http.routes[0]": func(c *config.Config) {
			c.HTTP.Listen = "127.0.0.1:0"
			c.HTTP.Routes = []config.HTTPRoute{{Method: "GET", Path: "/s", Topic: "s", Capability: config.CapStream, ValueFormat: "json"}}
		},
	} {
		c := config.Default()
		c.Node.Listen, c.Admin.Listen, c.Upstream.Brokers = "127.0.0.1:0", "", up.ListenAddrs()
		set(&c)
		if errs := c.Validate(); len(errs) > 0 {
			t.Fatalf("%s: the configuration is refused: %v", name, errs)
		}
		n, err := node.Start(c, node.Options{Logger: testenv.Logger()})
		if err == nil {
			n.Shutdown(context.Background())
			t.Fatalf("%s: a node converting values without a registry started", name)
		}
		if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "needs a schema registry") {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
