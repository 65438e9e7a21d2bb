package format

import (
	"testing"

	"github.com/meshka/meshka/schema"
)

func TestParse(t *testing.T) {
	for typ, text := range map[schema.Type]string{
		schema.Avro:     `"string"`,
		"":              `"string"`,
		schema.JSON:     `{"type":"string"}`,
		schema.Protobuf: `syntax = "proto3"; message M {}`,
	} {
		s, err := Parse(typ, text, nil)
		if err != nil {
			t.Fatalf("%q: %v", typ, err)
		}
		if want := typ; want != "" && s.Type() != want {
			t.Fatalf("%q: type %s", typ, s.Type())
		}
	}
	if _, err := Parse("XML", "<a/>", nil); err == nil {
		t.Fatal("XML parsed")
	}
	a, _ := Parse(schema.Avro, `"string"`, nil)
	j, _ := Parse(schema.JSON, `{"type":"string"}`, nil)
	if got := schema.Compatible(a, j); len(got) != 1 {
		t.Fatalf("a change of type: %q", got)
	}
}
