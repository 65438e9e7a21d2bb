package avro

import (
	"testing"
)

// Schemas the walker must judge as the library's decoder does.
var walkSchemas = []string{
	`{"type":"record","name":"All","namespace":"t","fields":[
		{"name":"n","type":"null"},{"name":"b","type":"boolean"},{"name":"i","type":"int"},{"name":"l","type":"long"},
		{"name":"f","type":"float"},{"name":"d","type":"double"},{"name":"s","type":"string"},{"name":"y","type":"bytes"},
		{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},
		{"name":"x","type":{"type":"fixed","name":"F","size":3}},
		{"name":"a","type":{"type":"array","items":"int"}},
		{"name":"m","type":{"type":"map","values":["null","E"]}},
		{"name":"u","type":["null","string","F"]}]}`,
	`{"type":"record","name":"Node","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","Node"]}]}`,
	`"string"`,
	order1K,
}

// The walker is compiled for these schemas, and agrees with the
// library's decoder on every input the fuzzer and the seeds try.
func FuzzWalk(f *testing.F) {
	var schemas []*Schema
	for _, text := range walkSchemas {
		s, err := Parse(text, nil)
		if err != nil {
			f.Fatal(err)
		}
		if s.walk == nil {
			f.Fatalf("no walker for %s", text)
		}
		schemas = append(schemas, s)
	}
	f.Add(byte(0), []byte{0, 1, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 'h', 'i', 0, 2, 1, 2, 3, 2, 2, 0, 0, 0})
	f.Add(byte(1), []byte{2, 2, 4, 2, 6, 0})
	f.Add(byte(1), []byte{2, 2, 4})
	f.Add(byte(2), []byte{1, 2, 0})
	f.Add(byte(2), []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0})
	f.Add(byte(3), []byte{6, 'a', 'b', 'c'})
	f.Fuzz(func(t *testing.T, which byte, b []byte) {
		s := schemas[int(which)%len(schemas)]
		rest, werr := s.walk.walk(b, 0)
		walkOK := werr == nil && len(rest) == 0
		libOK := s.decodeValidate(b) == nil
		if walkOK != libOK {
			t.Fatalf("schema %d, payload %x: the walker says %v (%v), the library's decoder %v", int(which)%len(schemas), b, walkOK, werr, libOK)
		}
	})
}

// Schemas with logical types, named types from references, or arrays and
// maps of items that take no bytes are checked by the library's decoder.
func TestWalkerNotForLogicalTypes(t *testing.T) {
	s, err := Parse(`{"type":"record","name":"T","fields":[{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.walk != nil {
		t.Error("a schema with a logical type got a walker")
	}
	e, err := Parse(`{"type":"array","items":{"type":"record","name":"Empty","fields":[]}}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.walk != nil {
		t.Error("an array of empty records got a walker")
	}
}
