package httpmap_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	tavro "github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
	httpmap "github.com/meshka/meshka/mappers/http"
	"github.com/meshka/meshka/schema/protobuf"
)

const (
	orderAvro = `{"type":"record","name":"Order","fields":[
		{"name":"id","type":"long"},
		{"name":"note","type":["null","string"],"default":null},
		{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}},
		{"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[
			{"name":"sku","type":"string"},{"name":"qty","type":"int"}]}}}]}`
	orderProto = "syntax = \"proto3\";\npackage shop;\nmessage Item { string item_name = 1; int32 qty = 2; }\n"
)

type avroLine struct {
	SKU string `avro:"sku"`
	Qty int32  `avro:"qty"`
}

type avroOrder struct {
	ID     int64      `avro:"id"`
	Note   *string    `avro:"note"`
	Status string     `avro:"status"`
	Lines  []avroLine `avro:"lines"`
}

var convertRoutes = []config.HTTPRoute{
	{Method: "POST", Path: "/orders", Topic: "events", Capability: "produce", Key: "o",
		ValueFormat: "json", ValueSchema: &config.HTTPValueSchema{Subject: "orders-value"}},
	{Method: "GET", Path: "/orders", Topic: "events", Capability: "fetch", ValueFormat: "json"},
	{Method: "GET", Path: "/orders/live", Topic: "events", Capability: "stream", ValueFormat: "json"},
	{Method: "POST", Path: "/items", Topic: "items", Capability: "produce", Key: "i",
		ValueFormat: "json", ValueSchema: &config.HTTPValueSchema{Subject: "items-value", Version: "1"}},
	{Method: "GET", Path: "/items", Topic: "items", Capability: "fetch", ValueFormat: "json"},
	{Method: "GET", Path: "/orders/ws", Topic: "events", Capability: "websocket", Key: "w",
		ValueFormat: "json", ValueSchema: &config.HTTPValueSchema{Subject: "orders-value", Version: "latest"}},
}

func startConvert(t *testing.T) (*testenv.Env, string, func(topic string, n int) []*kgo.Record) {
	env, base := start(t, registryOn, func(cfg *config.Config) { cfg.HTTP.Routes = convertRoutes })
	b, _ := env.Node.Binding("http")
	read := func(topic string, n int) []*kgo.Record {
		t.Helper()
		cl := env.DirectClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var out []*kgo.Record
		for len(out) < n && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
		}
		if len(out) < n {
			t.Fatalf("read %d records of %s, want %d", len(out), topic, n)
		}
		return out
	}
	if _, ok := b.(*httpmap.Server); !ok {
		t.Fatal("no HTTP binding")
	}
	return env, base, read
}

// A JSON body POSTed to a value_format json route is an Avro record of
// the subject's schema, which franz-go's Serde reads; the stream and the
// fetch of the topic give it back as JSON, leaving out a record that is
// not in the wire format; a body the schema does not take is a 400.
func TestValueFormatAvro(t *testing.T) {
	env, base, read := startConvert(t)
	ctx := context.Background()
	ss, err := srClient(t, base).CreateSchema(ctx, "orders-value", sr.Schema{Schema: orderAvro})
	if err != nil {
		t.Fatal(err)
	}

	req, _ := http.NewRequest("GET", base+"/orders/live", nil)
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	stream, err := http.DefaultClient.Do(req.WithContext(sctx))
	if err != nil || stream.StatusCode != 200 {
		t.Fatalf("stream: %v %v", stream, err)
	}
	defer stream.Body.Close()

	// A raw record first: the stream and the fetch leave it out.
	kc := env.DirectClient(t)
	if err := kc.ProduceSync(ctx, &kgo.Record{Topic: "events", Value: []byte("not avro")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	body := `{"id": 7, "note": {"string": "gift"}, "status": "PAID", "lines": [{"sku": "x", "qty": 2}]}`
	if resp, b := do(t, "POST", base+"/orders", body, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != 201 {
		t.Fatalf("produce: %d %s", resp.StatusCode, b)
	}
	want := `{"id":7,"note":"gift","status":"PAID","lines":[{"sku":"x","qty":2}]}`

	var rec *kgo.Record
	for _, r := range read("events", 2) {
		if string(r.Key) == "o" {
			rec = r
		}
	}
	avs, err := tavro.Parse(orderAvro)
	if err != nil {
		t.Fatal(err)
	}
	var serde sr.Serde
	serde.Register(ss.ID, avroOrder{}, sr.DecodeFn(func(b []byte, v any) error {
		_, err := avs.Decode(b, v)
		return err
	}))
	var got avroOrder
	if err := serde.Decode(rec.Value, &got); err != nil {
		t.Fatalf("%x: %v", rec.Value, err)
	}
	note := "gift"
	if !reflect.DeepEqual(got, avroOrder{ID: 7, Note: &note, Status: "PAID", Lines: []avroLine{{"x", 2}}}) {
		t.Fatalf("decoded %+v", got)
	}

	sc := bufio.NewScanner(stream.Body)
	var data string
	for data == "" && sc.Scan() {
		data, _ = strings.CutPrefix(sc.Text(), "data: ")
		if !strings.HasPrefix(sc.Text(), "data: ") {
			data = ""
		}
	}
	if !testenv.SameJSON(t, data, want) {
		t.Fatalf("streamed %q, want %s", data, want)
	}

	resp, fetched := do(t, "GET", base+"/orders", "", nil)
	if resp.StatusCode != 200 || !testenv.SameJSON(t, fetched, "["+want+"]") {
		t.Fatalf("fetched %d %s", resp.StatusCode, fetched)
	}

	resp, b := do(t, "POST", base+"/orders", `{"id": 7, "status": "LOST", "lines": []}`, nil)
	if resp.StatusCode != 400 || !strings.Contains(b, "LOST") || !strings.Contains(b, "orders-value") {
		t.Fatalf("a body the schema refuses: %d %s", resp.StatusCode, b)
	}
	if resp, b := do(t, "POST", base+"/orders", `{"id": "seven"`, nil); resp.StatusCode != 400 {
		t.Fatalf("not JSON: %d %s", resp.StatusCode, b)
	}
}

// A Protobuf subject: the JSON body is the message's binary after the
// header (message index 0), readable with dynamicpb; the fetch gives it
// back with the .proto's field names.
func TestValueFormatProtobuf(t *testing.T) {
	_, base, read := startConvert(t)
	ctx := context.Background()
	ss, err := srClient(t, base).CreateSchema(ctx, "items-value", sr.Schema{Schema: orderProto, Type: sr.TypeProtobuf})
	if err != nil {
		t.Fatal(err)
	}
	if resp, b := do(t, "POST", base+"/items", `{"itemName": "bolt", "qty": 3}`, nil); resp.StatusCode != 201 {
		t.Fatalf("produce: %d %s", resp.StatusCode, b)
	}
	rec := read("items", 1)[0]
	var h sr.ConfluentHeader
	id, rest, err := h.DecodeID(rec.Value)
	if err != nil || id != ss.ID {
		t.Fatalf("id %d %v", id, err)
	}
	idx, rest, err := h.DecodeIndex(rest, 8)
	if err != nil || !reflect.DeepEqual(idx, []int{0}) {
		t.Fatalf("index %v %v", idx, err)
	}
	ps, err := protobuf.Parse(orderProto, nil)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := ps.Message(idx)
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(rest, m); err != nil {
		t.Fatal(err)
	}
	if n, q := m.Get(md.Fields().ByName("item_name")).String(), m.Get(md.Fields().ByName("qty")).Int(); n != "bolt" || q != 3 {
		t.Fatalf("decoded %q %d", n, q)
	}
	resp, fetched := do(t, "GET", base+"/items", "", nil)
	if resp.StatusCode != 200 || !testenv.SameJSON(t, fetched, `[{"item_name":"bolt","qty":3}]`) {
		t.Fatalf("fetched %d %s", resp.StatusCode, fetched)
	}
	resp, b := do(t, "POST", base+"/items", `{"item_name": "bolt", "colour": "red"}`, nil)
	if resp.StatusCode != 400 || !strings.Contains(b, "colour") {
		t.Fatalf("an unknown field: %d %s", resp.StatusCode, b)
	}
}

// A websocket with value_format json encodes the JSON frames it is sent
// and delivers records as JSON; a frame the schema refuses is an error
// ack and close code 1007.
func TestValueFormatWebSocket(t *testing.T) {
	_, base, _ := startConvert(t)
	if _, err := srClient(t, base).CreateSchema(context.Background(), "orders-value", sr.Schema{Schema: orderAvro}); err != nil {
		t.Fatal(err)
	}
	c := dialWS(t, "ws"+strings.TrimPrefix(base, "http")+"/orders/ws", nil)
	doc := `{"id":1,"note":null,"status":"NEW","lines":[]}`
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	var acked, delivered bool
	for !acked || !delivered {
		_, b := readFrame(t, c)
		var f struct {
			Ack   int
			Error string
			Value json.RawMessage
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		switch {
		case f.Ack == 1 && f.Error == "":
			acked = true
		case f.Value != nil:
			if !testenv.SameJSON(t, string(f.Value), doc) {
				t.Fatalf("delivered %s", b)
			}
			delivered = true
		default:
			t.Fatalf("frame %s", b)
		}
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"id":2}`)); err != nil {
		t.Fatal(err)
	}
	_, b := readFrame(t, c)
	if !strings.Contains(string(b), `"ack":2,"error"`) {
		t.Fatalf("frame %s", b)
	}
	_, _, err := c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusInvalidFramePayloadData {
		t.Fatalf("closed with %v", err)
	}
}

// A route converting values with the registry off does not start.
func TestValueFormatNeedsRegistry(t *testing.T) {
	_, err := httpmap.New(config.HTTP{Routes: convertRoutes[1:2]}, httpmap.Env{Mesh: nil})
	if err == nil || !strings.Contains(err.Error(), "http.schema_registry.enabled") {
		t.Fatalf("got %v", err)
	}
}
