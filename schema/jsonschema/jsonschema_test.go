package jsonschema

import (
	"strings"
	"testing"

	"github.com/meshka/meshka/schema"
)

func mustParse(t testing.TB, text string, refs ...schema.Reference) *Schema {
	t.Helper()
	s, err := Parse(text, refs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const person = `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0}},"required":["name"]}`

func TestParse(t *testing.T) {
	for _, bad := range []string{``, `{`, `{"type":"nope"}`, `{"$ref":"https://example.com/elsewhere.json"}`,
		`{"$ref":"file:///etc/passwd"}`, `{"$ref":"other.json"}`, `{"type":"string","pattern":"("}`, `{} {}`} {
		if _, err := Parse(bad, nil); err == nil {
			t.Errorf("Parse(%q) = nil error", bad)
		}
	}
	a := mustParse(t, person)
	b := mustParse(t, `{ "required":["name"], "properties":{"age":{"minimum":0,"type":"integer"},"name":{"type":"string"}}, "type":"object" }`)
	if a.Canonical() != b.Canonical() || a.Type() != schema.JSON {
		t.Fatalf("canonical forms differ:\n%s\n%s", a.Canonical(), b.Canonical())
	}
}

func TestValidate(t *testing.T) {
	s := mustParse(t, person)
	if err := s.Validate([]byte(`{"name":"ada","age":36}`), nil); err != nil {
		t.Fatal(err)
	}
	for doc, want := range map[string]string{
		`{"age":36}`:              "name",
		`{"name":"ada","age":-1}`: "/age",
		`{"name":1}`:              "/name",
		`not json`:                "not one JSON document",
		`{"name":"a"} {}`:         "not one JSON document",
	} {
		err := s.Validate([]byte(doc), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%s) = %v, want it to name %q", doc, err, want)
		}
	}
}

func TestDrafts(t *testing.T) {
	// Draft 4's boolean exclusiveMinimum, chosen by $schema.
	s := mustParse(t, `{"$schema":"http://json-schema.org/draft-04/schema#","type":"number","minimum":1,"exclusiveMinimum":true}`)
	if s.Validate([]byte(`1`), nil) == nil {
		t.Fatal("draft 4 exclusive minimum ignored")
	}
	// Without $schema, 2020-12: prefixItems is a keyword.
	s = mustParse(t, `{"prefixItems":[{"type":"string"}]}`)
	if s.Validate([]byte(`[1]`), nil) == nil {
		t.Fatal("prefixItems ignored: not draft 2020-12")
	}
}

func TestReferences(t *testing.T) {
	addr := schema.Reference{Name: "address.json", Schema: `{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`}
	for _, text := range []string{
		`{"type":"object","properties":{"home":{"$ref":"address.json"}}}`,
		`{"$id":"https://example.com/person.json","type":"object","properties":{"home":{"$ref":"address.json"}}}`,
	} {
		s := mustParse(t, text, addr)
		if err := s.Validate([]byte(`{"home":{"city":"Oslo"}}`), nil); err != nil {
			t.Fatal(err)
		}
		if s.Validate([]byte(`{"home":{}}`), nil) == nil {
			t.Fatal("the referenced schema was not applied")
		}
	}
	abs := schema.Reference{Name: "https://example.com/address.json", Schema: addr.Schema}
	s := mustParse(t, `{"properties":{"home":{"$ref":"https://example.com/address.json"}}}`, abs)
	if s.Validate([]byte(`{"home":{"city":2}}`), nil) == nil {
		t.Fatal("absolute reference not applied")
	}
}

func TestReadsFrom(t *testing.T) {
	open := `{"type":"object","properties":{"a":{"type":"string"}}}`
	closed := `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`
	for _, tc := range []struct {
		name           string
		reader, writer string
		ok             bool
	}{
		{"same", person, person, true},
		{"integer widened to number", `{"type":"number"}`, `{"type":"integer"}`, true},
		{"number narrowed to integer", `{"type":"integer"}`, `{"type":"number"}`, false},
		{"type added to a union", `{"type":["string","null"]}`, `{"type":"string"}`, true},
		{"type removed from a union", `{"type":"string"}`, `{"type":["string","null"]}`, false},
		{"anything to string", `{"type":"string"}`, `{}`, false},
		{"string to anything", `{}`, `{"type":"string"}`, true},
		{"false writer", `{"type":"string"}`, `false`, true},
		{"false reader", `false`, `{"type":"string"}`, false},
		{"property added to a closed writer", `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}`, closed, true},
		{"property added to an open writer", `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}`, open, false},
		{"property removed from an open reader", `{"type":"object"}`, open, true},
		{"property removed from a closed reader", `{"type":"object","additionalProperties":false}`, closed, false},
		{"content model closed", closed, open, false},
		{"content model opened", open, closed, true},
		{"property covered by additionalProperties", `{"type":"object","additionalProperties":{"type":"string"}}`,
			`{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"string"}}`, true},
		{"property type narrowed", `{"type":"object","properties":{"a":{"type":"integer"}}}`, `{"type":"object","properties":{"a":{"type":"number"}}}`, false},
		{"required added", `{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`, open, false},
		{"required removed", open, `{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`, true},
		{"enum value added", `{"enum":["x","y"]}`, `{"enum":["x"]}`, true},
		{"enum value removed", `{"enum":["x"]}`, `{"enum":["x","y"]}`, false},
		{"enum added", `{"type":"string","enum":["x"]}`, `{"type":"string"}`, false},
		{"const widened to enum", `{"enum":["x","y"]}`, `{"const":"x"}`, true},
		{"minimum lowered", `{"type":"integer","minimum":0}`, `{"type":"integer","minimum":5}`, true},
		{"minimum raised", `{"type":"integer","minimum":5}`, `{"type":"integer","minimum":0}`, false},
		{"minimum added", `{"type":"integer","minimum":0}`, `{"type":"integer"}`, false},
		{"exclusive at the same value", `{"type":"number","exclusiveMinimum":0}`, `{"type":"number","minimum":0}`, false},
		{"maximum raised", `{"type":"integer","maximum":10}`, `{"type":"integer","maximum":5}`, true},
		{"maxLength lowered", `{"type":"string","maxLength":5}`, `{"type":"string","maxLength":10}`, false},
		{"minLength lowered", `{"type":"string","minLength":1}`, `{"type":"string","minLength":3}`, true},
		{"pattern added", `{"type":"string","pattern":"^a"}`, `{"type":"string"}`, false},
		{"multipleOf divides", `{"type":"integer","multipleOf":2}`, `{"type":"integer","multipleOf":4}`, true},
		{"multipleOf does not divide", `{"type":"integer","multipleOf":3}`, `{"type":"integer","multipleOf":4}`, false},
		{"items narrowed", `{"type":"array","items":{"type":"integer"}}`, `{"type":"array","items":{"type":"number"}}`, false},
		{"items widened", `{"type":"array","items":{"type":"number"}}`, `{"type":"array","items":{"type":"integer"}}`, true},
		{"maxItems added", `{"type":"array","maxItems":3}`, `{"type":"array"}`, false},
		{"uniqueItems added", `{"type":"array","uniqueItems":true}`, `{"type":"array"}`, false},
		{"oneOf branch added", `{"oneOf":[{"type":"string"},{"type":"integer"}]}`, `{"oneOf":[{"type":"string"}]}`, true},
		{"oneOf branch removed", `{"oneOf":[{"type":"string"}]}`, `{"oneOf":[{"type":"string"},{"type":"integer"}]}`, false},
		{"type became a oneOf", `{"oneOf":[{"type":"string"},{"type":"null"}]}`, `{"type":"string"}`, true},
		{"allOf reader", `{"allOf":[{"type":"object"},{"required":["a"]}]}`, `{"type":"object","required":["a"]}`, true},
		{"allOf reader narrows", `{"allOf":[{"type":"object"},{"required":["a"]}]}`, `{"type":"object"}`, false},
		{"local refs", `{"$defs":{"n":{"type":"number"}},"type":"object","properties":{"a":{"$ref":"#/$defs/n"}}}`,
			`{"definitions":{"i":{"type":"integer"}},"type":"object","properties":{"a":{"$ref":"#/definitions/i"}}}`, true},
		{"recursive", `{"$defs":{"t":{"type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#/$defs/t"}}}}},"$ref":"#/$defs/t"}`,
			`{"$defs":{"t":{"type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#/$defs/t"}}}}},"$ref":"#/$defs/t"}`, true},
		{"not added", `{"not":{"type":"null"}}`, `{}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := schema.Compatible(mustParse(t, tc.reader), mustParse(t, tc.writer))
			if (len(got) == 0) != tc.ok {
				t.Fatalf("Compatible = %q, want ok=%v", got, tc.ok)
			}
		})
	}
}

func TestReasonsNameTheProperty(t *testing.T) {
	r := mustParse(t, `{"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"integer"}}}}}`)
	w := mustParse(t, `{"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"string"}}}}}`)
	got := schema.Compatible(r, w)
	if len(got) != 1 || !strings.HasPrefix(got[0], "/a/b: ") {
		t.Fatalf("%q", got)
	}
}

func FuzzValidate(f *testing.F) {
	s := mustParse(f, `{"type":"object","properties":{"name":{"type":"string","maxLength":10},"tags":{"type":"array","items":{"enum":["a","b"]}},"n":{"type":"number","multipleOf":0.5}},"required":["name"],"additionalProperties":false}`)
	f.Add([]byte(`{"name":"x","tags":["a"],"n":1.5}`))
	f.Add([]byte(`{"name":1}`))
	f.Add([]byte(`[[[[[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = s.Validate(b, nil)
	})
}

func FuzzReadsFrom(f *testing.F) {
	f.Add(person, `{"type":"object"}`)
	f.Add(`{"oneOf":[{"$ref":"#/$defs/a"}],"$defs":{"a":{"type":"string"}}}`, `{"anyOf":[{"type":"string"},{"type":"null"}]}`)
	f.Fuzz(func(t *testing.T, reader, writer string) {
		r, err := Parse(reader, nil)
		if err != nil {
			return
		}
		w, err := Parse(writer, nil)
		if err != nil {
			return
		}
		_ = r.ReadsFrom(w)
		if got := r.ReadsFrom(r); len(got) > 0 && !strings.Contains(strings.Join(got, ""), "not compared") && !strings.Contains(strings.Join(got, ""), "does not follow") {
			t.Fatalf("a schema does not read itself: %q", got)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add(person)
	f.Add(`{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{"a":{"type":"string"}},"items":[{"$ref":"#/definitions/a"}]}`)
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse(text, nil)
		if err != nil {
			return
		}
		_ = s.Validate([]byte(text), nil)
	})
}
