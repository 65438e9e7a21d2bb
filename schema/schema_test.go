package schema

import "testing"

func TestParseType(t *testing.T) {
	for in, want := range map[string]Type{"": Avro, "AVRO": Avro, "JSON": JSON, "PROTOBUF": Protobuf} {
		if got, err := ParseType(in); got != want || err != nil {
			t.Errorf("ParseType(%q) = %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"avro", "XML", "JSONSCHEMA"} {
		if _, err := ParseType(bad); err == nil {
			t.Errorf("ParseType(%q) = nil error", bad)
		}
	}
}

func TestNormalizeJSON(t *testing.T) {
	for in, want := range map[string]string{
		` { "b" : 1.50, "a" : [ true, null ] } `: `{"a":[true,null],"b":1.50}`,
		`"<&>"`:                                  `"<&>"`,
		`12345678901234567890`:                   `12345678901234567890`,
	} {
		if got, err := NormalizeJSON(in); got != want || err != nil {
			t.Errorf("NormalizeJSON(%s) = %s %v", in, got, err)
		}
	}
	for _, bad := range []string{``, `{`, `{} {}`, `{"a":1}x`} {
		if _, err := NormalizeJSON(bad); err == nil {
			t.Errorf("NormalizeJSON(%q) = nil error", bad)
		}
	}
}
