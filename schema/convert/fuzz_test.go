package convert

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/meshka/meshka/schema/wire"
)

// roundTrip checks what holds of every document FromJSON takes: its
// record, written as JSON and read back, is the same record, and the JSON
// of both is the same.
func roundTrip(t *testing.T, l lookup, id int, indexes []int, doc []byte) {
	b, err := FromJSON(l[id], id, indexes, doc)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || e.Error() == "" {
			t.Fatalf("not an *Error: %v", err)
		}
		return
	}
	j, err := ToJSON(context.Background(), l, b)
	if err != nil {
		t.Fatalf("%s: encoded, yet not decoded: %v", doc, err)
	}
	b2, err := FromJSON(l[id], id, indexes, j)
	if err != nil {
		t.Fatalf("%s: its JSON %s does not read back: %v", doc, j, err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("%s: JSON %s reads back as another record", doc, j)
	}
	j2, err := ToJSON(context.Background(), l, b2)
	if err != nil || !sameJSON(t, j, j2) {
		t.Fatalf("%s: %s then %s (%v)", doc, j, j2, err)
	}
}

func FuzzFromJSONAvro(f *testing.F) {
	l := schemas(f)
	f.Add([]byte(`{"id":7,"note":{"string":"gift"},"amount":{"string":"1"},"status":"PAID","blob":"\u00ff","tag":"ab","lines":[{"sku":"x","qty":2}],"attrs":{"w":1.5}}`))
	f.Add([]byte(`{"id":-1,"note":null,"amount":3,"status":"NEW","blob":"","tag":"\u0000\u0001","lines":[],"attrs":{"n":"NaN"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, doc []byte) { roundTrip(t, l, 1, nil, doc) })
}

func FuzzFromJSONProtobuf(f *testing.F) {
	l := schemas(f)
	f.Add([]byte(`{"id":"9","customerName":"ann","status":"PAID","blob":"AAH/","lines":[{"sku":"x","qty":2}],"attrs":{"w":1.5},"at":"2024-05-01T10:00:00Z","points":3}`))
	f.Add([]byte(`{"card":"x","status":1,"attrs":{"n":"NaN"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, doc []byte) { roundTrip(t, l, 2, nil, doc) })
}

func FuzzFromJSONSchema(f *testing.F) {
	l := schemas(f)
	f.Add([]byte(`{"id":3}`))
	f.Add([]byte(` {"id": 1e3, "more": [null]} `))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, doc []byte) { roundTrip(t, l, 3, nil, doc) })
}

func FuzzToJSON(f *testing.F) {
	l := schemas(f)
	for id, doc := range map[int]string{
		1: `{"id":7,"note":"x","amount":1,"status":"PAID","blob":"","tag":"ab","lines":[{"sku":"x","qty":2}],"attrs":{"w":1.5}}`,
		2: `{"id":"9","lines":[{"sku":"x"}],"at":"2024-05-01T10:00:00Z"}`,
		3: `{"id":3}`,
	} {
		b, err := FromJSON(l[id], id, nil, []byte(doc))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(append(wire.Append(nil, 2, []int{1}), 0x0a, 0x01, 'x'))
	f.Add([]byte{0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, payload []byte) {
		j, err := ToJSON(context.Background(), l, payload)
		if err != nil {
			return
		}
		if len(payload) < wire.HeaderSize {
			t.Fatal("a short payload decoded")
		}
		id := int(payload[4])
		if id == 3 {
			return // JSON Schema payloads are written out unchecked
		}
		_, indexes, _, _ := wire.Decode(payload, id == 2)
		// The JSON of any Avro or Protobuf record that decodes encodes again.
		if _, err := FromJSON(l[id], id, indexes, j); err != nil {
			t.Fatalf("%x decoded as %s, which does not encode: %v", payload, j, err)
		}
	})
}
