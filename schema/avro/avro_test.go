package avro

import (
	"strings"
	"testing"

	tavro "github.com/twmb/avro"

	"github.com/meshka/meshka/schema"
)

const user = `{"type":"record","name":"User","namespace":"t","fields":[
	{"name":"name","type":"string"},
	{"name":"age","type":"int"}]}`

func mustParse(t testing.TB, text string, refs ...schema.Reference) *Schema {
	t.Helper()
	s, err := Parse(text, refs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func encode(t testing.TB, s *Schema, v any) []byte {
	t.Helper()
	b, err := s.s.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	for _, bad := range []string{``, `{`, `{"type":"nope"}`, `{"type":"record","name":"R"}`, `"string" "int"`,
		`{"type":"record","name":"R","fields":[{"name":"a","type":"Missing"}]}`} {
		if _, err := Parse(bad, nil); err == nil {
			t.Errorf("Parse(%q) = nil error", bad)
		}
	}
	a := mustParse(t, user)
	b := mustParse(t, `{ "namespace":"t", "name":"User", "type":"record", "fields":[{"type":"string","name":"name"},{"name":"age","type":"int"}] }`)
	if a.Canonical() != b.Canonical() {
		t.Fatalf("canonical forms differ:\n%s\n%s", a.Canonical(), b.Canonical())
	}
	if got := a.ParsingCanonicalForm(); !strings.HasPrefix(got, `{"name":"t.User","type":"record"`) {
		t.Fatalf("parsing canonical form %s", got)
	}
	if a.Type() != schema.Avro {
		t.Fatal(a.Type())
	}
}

func TestReferences(t *testing.T) {
	addr := `{"type":"record","name":"Address","namespace":"t","fields":[{"name":"city","type":"string"}]}`
	withAddr := `{"type":"record","name":"Person","namespace":"t","fields":[{"name":"home","type":"t.Address"}]}`
	if _, err := Parse(withAddr, nil); err == nil {
		t.Fatal("parsed without its reference")
	}
	s := mustParse(t, withAddr, schema.Reference{Name: "t.Address", Schema: addr})
	p := encode(t, s, map[string]any{"home": map[string]any{"city": "Oslo"}})
	if err := s.Validate(p, nil); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	s := mustParse(t, user)
	good := encode(t, s, map[string]any{"name": "ada", "age": 36})
	if err := s.Validate(good, nil); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-1],
		"trailing":  append(append([]byte{}, good...), 0),
		"long name": {0x80, 0x80, 0x80, 0x80, 0x08},
	} {
		if err := s.Validate(p, nil); err == nil {
			t.Errorf("%s: nil error", name)
		}
	}
	e := mustParse(t, `{"type":"enum","name":"E","symbols":["A","B"]}`)
	if err := e.Validate([]byte{4}, nil); err == nil { // index 2
		t.Error("enum index out of range accepted")
	}
	u := mustParse(t, `["null","string"]`)
	if err := u.Validate([]byte{6}, nil); err == nil { // branch 3
		t.Error("union branch out of range accepted")
	}
}

func TestReadsFrom(t *testing.T) {
	for _, tc := range []struct {
		name           string
		reader, writer string
		ok             bool
	}{
		{"same", user, user, true},
		{"field added with default", `{"type":"record","name":"User","namespace":"t","fields":[
			{"name":"name","type":"string"},{"name":"age","type":"int"},
			{"name":"email","type":["null","string"],"default":null}]}`, user, true},
		{"field added without default", `{"type":"record","name":"User","namespace":"t","fields":[
			{"name":"name","type":"string"},{"name":"age","type":"int"},{"name":"email","type":"string"}]}`, user, false},
		{"field removed", `{"type":"record","name":"User","namespace":"t","fields":[{"name":"name","type":"string"}]}`, user, true},
		{"int widened to long", `{"type":"record","name":"User","namespace":"t","fields":[
			{"name":"name","type":"string"},{"name":"age","type":"long"}]}`, user, true},
		{"long narrowed to int", user, `{"type":"record","name":"User","namespace":"t","fields":[
			{"name":"name","type":"string"},{"name":"age","type":"long"}]}`, false},
		{"enum symbol removed", `{"type":"enum","name":"E","symbols":["A"]}`, `{"type":"enum","name":"E","symbols":["A","B"]}`, false},
		{"enum symbol added", `{"type":"enum","name":"E","symbols":["A","B"]}`, `{"type":"enum","name":"E","symbols":["A"]}`, true},
		{"type changed", `"string"`, `"int"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := schema.Compatible(mustParse(t, tc.reader), mustParse(t, tc.writer))
			if (len(got) == 0) != tc.ok {
				t.Fatalf("Compatible = %q, want ok=%v", got, tc.ok)
			}
		})
	}
}

// order1K is an order of about 1 KiB in Avro binary: the record the
// library choice was measured on (docs/ARCHITECTURE.md, "Schemas").
const order1K = `{"type":"record","name":"Order","namespace":"shop","fields":[
 {"name":"id","type":"long"},
 {"name":"customer","type":"string"},
 {"name":"email","type":["null","string"],"default":null},
 {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED"]}},
 {"name":"total","type":"double"},
 {"name":"address","type":{"type":"record","name":"Address","fields":[
   {"name":"street","type":"string"},{"name":"city","type":"string"},{"name":"zip","type":"string"}]}},
 {"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[
   {"name":"sku","type":"string"},{"name":"qty","type":"int"},{"name":"price","type":"double"}]}}},
 {"name":"tags","type":{"type":"map","values":"string"}}]}`

func order(t testing.TB) (*Schema, []byte) {
	s := mustParse(t, order1K)
	var lines []any
	for i := range 27 {
		lines = append(lines, map[string]any{"sku": "SKU-0000000" + string(rune('a'+i%26)) + "-XYZ", "qty": i, "price": float64(i) * 1.5})
	}
	tags := map[string]any{}
	for i := range 10 {
		tags["tag0"+string(rune('0'+i))] = "value number 0" + string(rune('0'+i))
	}
	return s, encode(t, s, map[string]any{
		"id": 123456789, "customer": "Ada Lovelace", "email": "ada@example.com", "status": "PAID", "total": 1234.5,
		"address": map[string]any{"street": "12 Analytical Engine Way", "city": "London", "zip": "NW1 2AB"},
		"lines":   lines, "tags": tags,
	})
}

func BenchmarkValidate1K(b *testing.B) {
	s, p := order(b)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Validate(p, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzValidate(f *testing.F) {
	s, p := order(f)
	f.Add(p)
	f.Add(p[:100])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if s.Validate(b, nil) != nil {
			return
		}
		// What validates decodes, and encodes back to the bytes it came from
		// up to Avro's liberal reading of booleans and varints.
		var v any
		if _, err := s.s.Decode(b, &v); err != nil {
			t.Fatal(err)
		}
		if _, err := s.s.Encode(v); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add(user)
	f.Add(order1K)
	f.Add(`["null","string"]`)
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse(text, nil)
		if err != nil {
			return
		}
		if _, err := tavro.Parse(s.ParsingCanonicalForm()); err != nil {
			t.Fatalf("the parsing canonical form does not parse: %v", err)
		}
	})
}
