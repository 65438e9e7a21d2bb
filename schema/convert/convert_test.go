package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/meshka/meshka/schema"
	"github.com/meshka/meshka/schema/format"
	"github.com/meshka/meshka/schema/protobuf"
	"github.com/meshka/meshka/schema/wire"
)

const avroOrder = `{"type":"record","name":"Order","namespace":"shop","fields":[
	{"name":"id","type":"long"},
	{"name":"note","type":["null","string"],"default":null},
	{"name":"amount","type":["int","string"]},
	{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}},
	{"name":"blob","type":"bytes"},
	{"name":"tag","type":{"type":"fixed","name":"Tag","size":2}},
	{"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[
		{"name":"sku","type":"string"},{"name":"qty","type":"int"}]}}},
	{"name":"attrs","type":{"type":"map","values":"double"}}
]}`

const protoOrder = `syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
message Order {
  int64 id = 1;
  string customer_name = 2;
  enum Status { NEW = 0; PAID = 1; }
  Status status = 3;
  bytes blob = 4;
  message Line { string sku = 1; int32 qty = 2; }
  repeated Line lines = 5;
  map<string, double> attrs = 6;
  google.protobuf.Timestamp at = 7;
  oneof pay { string card = 8; int32 points = 9; }
}
message Other { string name = 1; }
`

const jsonOrder = `{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}`

// lookup is a Lookup over a map.
type lookup map[int]schema.Schema

func (l lookup) ByID(_ context.Context, id int) (schema.Schema, schema.Type, error) {
	s, ok := l[id]
	if !ok {
		return nil, "", fmt.Errorf("no schema %d", id)
	}
	return s, s.Type(), nil
}

func parse(t testing.TB, typ schema.Type, text string) schema.Schema {
	t.Helper()
	s, err := format.Parse(typ, text, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func schemas(t testing.TB) lookup {
	return lookup{
		1: parse(t, schema.Avro, avroOrder),
		2: parse(t, schema.Protobuf, protoOrder),
		3: parse(t, schema.JSON, jsonOrder),
	}
}

// sameJSON says whether a and b are the same JSON value, key order aside.
func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func TestAvroBothWays(t *testing.T) {
	l := schemas(t)
	in := `{"id":7,"note":{"string":"gift"},"amount":{"string":"12.50"},"status":"PAID",
		"blob":"\u0000\u00ff\u0041","tag":"ab","lines":[{"sku":"x","qty":2}],"attrs":{"w":1.5}}`
	b, err := FromJSON(l[1], 1, nil, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	id, _, payload, err := wire.Decode(b, false)
	if err != nil || id != 1 {
		t.Fatalf("header: %d %v", id, err)
	}
	if err := l[1].Validate(payload, nil); err != nil {
		t.Fatal(err)
	}
	out, err := ToJSON(context.Background(), l, b)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":7,"note":"gift","amount":"12.50","status":"PAID","blob":"\u0000\u00ffA","tag":"ab","lines":[{"sku":"x","qty":2}],"attrs":{"w":1.5}}`
	if !sameJSON(t, out, []byte(want)) {
		t.Fatalf("got %s\nwant %s", out, want)
	}
	// Untagged output reads back as the same record.
	b2, err := FromJSON(l[1], 1, nil, out)
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("round trip: %v\n%x\n%x", err, b, b2)
	}
}

func TestAvroUnionsPlain(t *testing.T) {
	l := schemas(t)
	for _, c := range []struct{ in, amount string }{
		{`{"id":1,"amount":5,"status":"NEW","blob":"","tag":"zz","lines":[],"attrs":{}}`, `5`},
		{`{"id":1,"amount":"5","status":"NEW","blob":"","tag":"zz","lines":[],"attrs":{}}`, `"5"`},
		{`{"id":1,"amount":{"int":5},"note":null,"status":"NEW","blob":"","tag":"zz","lines":[],"attrs":{}}`, `5`},
	} {
		b, err := FromJSON(l[1], 1, nil, []byte(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		out, err := ToJSON(context.Background(), l, b)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		json.Unmarshal(out, &m)
		if string(m["amount"]) != c.amount || string(m["note"]) != "null" {
			t.Fatalf("%s: got %s", c.in, out)
		}
	}
}

func TestAvroRefused(t *testing.T) {
	l := schemas(t)
	for _, in := range []string{
		`{"id":"x","amount":1,"status":"NEW","blob":"","tag":"zz","lines":[],"attrs":{}}`,
		`{"id":1,"amount":1,"status":"GONE","blob":"","tag":"zz","lines":[],"attrs":{}}`,
		`{"id":1,"amount":1,"status":"NEW","blob":"","tag":"zzz","lines":[],"attrs":{}}`,
		`{"id":1,"amount":true,"status":"NEW","blob":"","tag":"zz","lines":[],"attrs":{}}`,
		`{"id":1,"amount":1,"status":"NEW","blob":"\u0100","tag":"zz","lines":[],"attrs":{}}`,
		`{"id":1,"amount":1,"status":"NEW","blob":"","tag":"zz","lines":[],"attrs":{}} {}`,
		`not json`,
	} {
		_, err := FromJSON(l[1], 1, nil, []byte(in))
		var e *Error
		if !errors.As(err, &e) || e.SchemaID != 1 {
			t.Errorf("%s: got %v, want an *Error", in, err)
		}
	}
}

func TestProtobufBothWays(t *testing.T) {
	l := schemas(t)
	in := `{"id":"9","customerName":"ann","status":"PAID","blob":"AAH/","lines":[{"sku":"x","qty":2}],
		"attrs":{"w":1.5},"at":"2024-05-01T10:00:00Z","points":3}`
	b, err := FromJSON(l[2], 2, nil, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	id, idx, payload, err := wire.Decode(b, true)
	if err != nil || id != 2 || !reflect.DeepEqual(idx, []int{0}) {
		t.Fatalf("header: %d %v %v", id, idx, err)
	}
	md, _ := l[2].(*protobuf.Schema).Message(nil)
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(payload, m); err != nil {
		t.Fatal(err)
	}
	if got := m.Get(md.Fields().ByName("customer_name")).String(); got != "ann" {
		t.Fatalf("customer_name %q", got)
	}
	out, err := ToJSON(context.Background(), l, b)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"9","customer_name":"ann","status":"PAID","blob":"AAH/","lines":[{"sku":"x","qty":2}],"attrs":{"w":1.5},"at":"2024-05-01T10:00:00Z","points":3}`
	if !sameJSON(t, out, []byte(want)) {
		t.Fatalf("got %s\nwant %s", out, want)
	}
	b2, err := FromJSON(l[2], 2, nil, out)
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestProtobufIndexes(t *testing.T) {
	l := schemas(t)
	b, err := FromJSON(l[2], 2, []int{1}, []byte(`{"name":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, idx, _, _ := wire.Decode(b, true)
	if !reflect.DeepEqual(idx, []int{1}) {
		t.Fatalf("indexes %v", idx)
	}
	out, err := ToJSON(context.Background(), l, b)
	if err != nil || string(out) != `{"name":"x"}` {
		t.Fatalf("%s %v", out, err)
	}
	if _, err := FromJSON(l[2], 2, []int{5}, []byte(`{}`)); err == nil {
		t.Fatal("index 5 accepted")
	}
}

func TestProtobufRefused(t *testing.T) {
	l := schemas(t)
	for _, in := range []string{`{"nope":1}`, `{"id":"x"}`, `{"status":"GONE"}`, `[]`, `{"card":"a","points":1}`} {
		_, err := FromJSON(l[2], 2, nil, []byte(in))
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: got %v, want an *Error", in, err)
		}
	}
}

func TestJSONSchemaBothWays(t *testing.T) {
	l := schemas(t)
	doc := `{"id": 3, "x": [1]}`
	b, err := FromJSON(l[3], 3, nil, []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[wire.HeaderSize:], []byte(doc)) || b[4] != 3 {
		t.Fatalf("%q", b)
	}
	out, err := ToJSON(context.Background(), l, b)
	if err != nil || string(out) != doc {
		t.Fatalf("%s %v", out, err)
	}
	_, err = FromJSON(l[3], 3, nil, []byte(`{"x":1}`))
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "id") {
		t.Fatalf("missing id: %v", err)
	}
}

func TestToJSONRefused(t *testing.T) {
	l := schemas(t)
	for _, p := range [][]byte{nil, {0, 0, 0}, {1, 0, 0, 0, 1, 2}, wire.Append(nil, 1, nil), append(wire.Append(nil, 3, nil), "{"...)} {
		_, err := ToJSON(context.Background(), l, p)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%x: got %v, want an *Error", p, err)
		}
	}
	_, err := ToJSON(context.Background(), l, wire.Append(nil, 99, nil))
	var e *Error
	if err == nil || errors.As(err, &e) {
		t.Fatalf("unknown id: %v", err)
	}
}
