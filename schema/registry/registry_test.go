package registry

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/meshka/meshka/schema"
)

func TestRegisterAndRead(t *testing.T) {
	s := New()
	r := do(t, s, Register{Subject: "a-value", Schema: avro(userV1)})
	if r.ID != 1 || r.Version != 1 {
		t.Fatalf("first registration: %+v", r)
	}
	// The same schema again: nothing to write, the same answer.
	recs, again, err := s.Plan(Register{Subject: "a-value", Schema: avro(" " + userV1 + "\n")})
	if err != nil || len(recs) != 0 || again.ID != r.ID || again.Version != r.Version {
		t.Fatalf("re-registration: %v %+v %v", recs, again, err)
	}
	if r := do(t, s, Register{Subject: "a-value", Schema: avro(userV2)}); r.ID != 2 || r.Version != 2 {
		t.Fatalf("second version: %+v", r)
	}
	// The same schema under another subject shares its id, whatever its
	// formatting, and keeps the text the id was first registered with.
	if r := do(t, s, Register{Subject: "b-value", Schema: avro(strings.ReplaceAll(userV1, ",", ", "))}); r.ID != 1 || r.Version != 1 {
		t.Fatalf("under a second subject: %+v", r)
	}
	if got, _ := s.GetVersion("b-value", 1, false); got.Schema != userV1 {
		t.Fatalf("b-value 1 holds %s", got.Schema)
	}

	if got := s.Subjects(false); !slices.Equal(got, []string{"a-value", "b-value"}) {
		t.Fatalf("Subjects = %v", got)
	}
	if got, _ := s.Versions("a-value", false); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("Versions = %v", got)
	}
	latest, err := s.GetVersion("a-value", Latest, false)
	if err != nil || latest.Version != 2 || latest.ID != 2 || latest.Type != schema.Avro || latest.Schema != userV2 {
		t.Fatalf("latest = %+v %v", latest, err)
	}
	if sc, err := s.ByID(1); err != nil || sc.Schema != userV1 || sc.Type != schema.Avro {
		t.Fatalf("ByID(1) = %+v %v", sc, err)
	}
	if svs, _ := s.IDVersions(1, false); !slices.Equal(svs, []SubjectVersion{{"a-value", 1}, {"b-value", 1}}) {
		t.Fatalf("IDVersions(1) = %v", svs)
	}
	if v, err := s.Lookup("a-value", avro(userV2), false); err != nil || v.Version != 2 {
		t.Fatalf("Lookup = %+v %v", v, err)
	}
	if c, err := s.Compiled(2); err != nil || c.Type() != schema.Avro {
		t.Fatalf("Compiled(2) = %v %v", c, err)
	}
}

func TestSchemaTypes(t *testing.T) {
	s := New()
	j := do(t, s, Register{Subject: "j", Schema: jsonSchema(`{"type":"object"}`)})
	p := do(t, s, Register{Subject: "p", Schema: proto(`syntax = "proto3"; message M { int32 a = 1; }`)})
	if j.ID != 1 || p.ID != 2 {
		t.Fatal(j, p)
	}
	// The same text as another type is another schema.
	if a := do(t, s, Register{Subject: "a", Schema: avro(`{"type":"string"}`)}); a.ID != 3 {
		t.Fatal(a)
	}
	if v, _ := s.GetVersion("p", 1, false); v.Type != schema.Protobuf {
		t.Fatal(v)
	}
	// A change of type is incompatible under BACKWARD.
	fails(t, s, Register{Subject: "j", Schema: avro(`"string"`)}, CodeIncompatibleSchema)
}

func TestNormalize(t *testing.T) {
	s := New()
	spaced := `{ "type": "object", "properties": { "b": {}, "a": {} } }`
	do(t, s, Register{Subject: "n", Schema: jsonSchema(spaced), Normalize: true})
	if v, _ := s.GetVersion("n", 1, false); v.Schema != `{"properties":{"a":{},"b":{}},"type":"object"}` {
		t.Fatalf("stored %s", v.Schema)
	}
	do(t, s, Register{Subject: "m", Schema: jsonSchema(`{ "type": "string" }`)})
	if v, _ := s.GetVersion("m", 1, false); v.Schema != `{ "type": "string" }` {
		t.Fatalf("stored %s without normalize", v.Schema)
	}
	yes := true
	do(t, s, SetConfig{Subject: "o", Config: Config{Normalize: &yes}})
	do(t, s, Register{Subject: "o", Schema: jsonSchema(`{ "type": "integer" }`)})
	if v, _ := s.GetVersion("o", 1, false); v.Schema != `{"type":"integer"}` {
		t.Fatalf("stored %s under a normalizing config", v.Schema)
	}
}

func TestErrorCodes(t *testing.T) {
	s := New()
	do(t, s, Register{Subject: "s", Schema: avro(userV1)})
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"unknown subject", second(s.GetVersion("nope", 1, false)), CodeSubjectNotFound},
		{"unknown version", second(s.GetVersion("s", 7, false)), CodeVersionNotFound},
		{"version 0", second(s.GetVersion("s", 0, false)), CodeInvalidVersion},
		{"versions of an unknown subject", second(s.Versions("nope", false)), CodeSubjectNotFound},
		{"unknown id", second(s.ByID(99)), CodeSchemaNotFound},
		{"unknown id's versions", second(s.IDVersions(99, false)), CodeSchemaNotFound},
		{"compiled unknown id", second(s.Compiled(99)), CodeSchemaNotFound},
		{"lookup, unknown subject", second(s.Lookup("nope", avro(userV1), false)), CodeSubjectNotFound},
		{"lookup, unknown schema", second(s.Lookup("s", avro(userV2), false)), CodeSchemaNotFound},
		{"lookup, invalid schema", second(s.Lookup("s", avro(`{`), false)), CodeInvalidSchema},
		{"referencedby, unknown version", second(s.ReferencedBy("s", 3)), CodeVersionNotFound},
		{"subject config not configured", second(s.Config("s", false)), CodeSubjectConfigNotConfigured},
		{"subject mode not configured", second(s.Mode("s", false)), CodeSubjectModeNotConfigured},
		{"check against an unknown version", third(s.CheckCompatibility("s", 4, avro(userV2))), CodeVersionNotFound},
		{"check an invalid schema", third(s.CheckCompatibility("s", 0, avro(`{`))), CodeInvalidSchema},
	} {
		if got := code(tc.err); got != tc.want {
			t.Errorf("%s: %v, want code %d", tc.name, tc.err, tc.want)
		}
	}
	for _, v := range []string{"0", "-2", "x", "2147483648", ""} {
		if _, err := ParseVersion(v); code(err) != CodeInvalidVersion {
			t.Errorf("ParseVersion(%q): %v", v, err)
		}
	}
	for v, want := range map[string]int{"latest": Latest, "-1": Latest, "1": 1, "2147483647": 1<<31 - 1} {
		if got, err := ParseVersion(v); got != want || err != nil {
			t.Errorf("ParseVersion(%q) = %d %v", v, got, err)
		}
	}

	fails(t, s, Register{Subject: "s", Schema: avro(`{"type":"nope"}`)}, CodeInvalidSchema)
	fails(t, s, Register{Subject: "s", Schema: Schema{Type: "XML", Schema: `<a/>`}}, CodeInvalidSchema)
	fails(t, s, Register{Subject: "", Schema: avro(userV1)}, CodeInvalidSubject)
	fails(t, s, Register{Subject: "a\x00b", Schema: avro(userV1)}, CodeInvalidSubject)
	e := fails(t, s, Register{Subject: "s", Schema: avro(userBad)}, CodeIncompatibleSchema)
	if e.Status() != 409 || len(e.Reasons) == 0 || !strings.Contains(e.Reasons[0], "version 1") {
		t.Errorf("incompatible: %+v", e)
	}
	if e := fails(t, s, Register{Subject: "s", Schema: avro(`{`)}, CodeInvalidSchema); e.Status() != 422 {
		t.Errorf("status %d", e.Status())
	}
	fails(t, s, Register{Subject: "s", Schema: avro(userV2), ID: 5}, CodeOperationNotPermitted)
	fails(t, s, SetConfig{Config: Config{Compatibility: "SIDEWAYS"}}, CodeInvalidCompatibilityLevel)
	fails(t, s, SetConfig{}, CodeInvalidCompatibilityLevel)
	fails(t, s, SetMode{Mode: "READMOSTLY"}, CodeInvalidMode)
	fails(t, s, DeleteConfig{Subject: "s"}, CodeSubjectConfigNotConfigured)
	fails(t, s, DeleteMode{Subject: "s"}, CodeSubjectModeNotConfigured)
	fails(t, s, DeleteSubject{Subject: "nope"}, CodeSubjectNotFound)
	fails(t, s, DeleteVersion{Subject: "nope", Version: 1}, CodeSubjectNotFound)
	fails(t, s, DeleteVersion{Subject: "s", Version: 9}, CodeVersionNotFound)
	if e := fails(t, s, DeleteVersion{Subject: "s", Version: 9}, CodeVersionNotFound); e.Status() != 404 {
		t.Errorf("status %d", e.Status())
	}
}

func second[T any](_ T, err error) error { return err }

func third[T, U any](_ T, _ U, err error) error { return err }

func TestDeletes(t *testing.T) {
	s := New()
	do(t, s, Register{Subject: "s", Schema: avro(userV1)})
	do(t, s, Register{Subject: "s", Schema: avro(userV2)})

	fails(t, s, DeleteVersion{Subject: "s", Version: 1, Permanent: true}, CodeVersionNotSoftDeleted)
	if r := do(t, s, DeleteVersion{Subject: "s", Version: 1}); r.Version != 1 {
		t.Fatal(r)
	}
	fails(t, s, DeleteVersion{Subject: "s", Version: 1}, CodeVersionSoftDeleted)
	if got, _ := s.Versions("s", false); !slices.Equal(got, []int{2}) {
		t.Fatalf("live versions %v", got)
	}
	if got, _ := s.Versions("s", true); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("all versions %v", got)
	}
	if _, err := s.GetVersion("s", 1, false); code(err) != CodeVersionNotFound {
		t.Fatalf("soft-deleted version read: %v", err)
	}
	if v, err := s.GetVersion("s", 1, true); err != nil || !v.Deleted {
		t.Fatalf("soft-deleted version with deleted: %+v %v", v, err)
	}
	if _, err := s.ByID(1); err != nil {
		t.Fatalf("a soft-deleted version's id: %v", err)
	}
	if _, err := s.Lookup("s", avro(userV1), false); code(err) != CodeSchemaNotFound {
		t.Fatalf("lookup of a soft-deleted version: %v", err)
	}
	if v, err := s.Lookup("s", avro(userV1), true); err != nil || v.Version != 1 {
		t.Fatalf("lookup with deleted: %+v %v", v, err)
	}

	fails(t, s, DeleteSubject{Subject: "s", Permanent: true}, CodeSubjectNotSoftDeleted)
	if r := do(t, s, DeleteSubject{Subject: "s"}); !slices.Equal(r.Versions, []int{2}) {
		t.Fatal(r)
	}
	fails(t, s, DeleteSubject{Subject: "s"}, CodeSubjectSoftDeleted)
	if got := s.Subjects(false); len(got) != 0 {
		t.Fatalf("Subjects = %v", got)
	}
	if got := s.Subjects(true); !slices.Equal(got, []string{"s"}) {
		t.Fatalf("Subjects(deleted) = %v", got)
	}
	if _, err := s.GetVersion("s", Latest, false); code(err) != CodeSubjectNotFound {
		t.Fatalf("latest of a soft-deleted subject: %v", err)
	}

	// Re-registering after a soft delete: a new version, the same id, and
	// the compatibility of versions that are gone does not count.
	if r := do(t, s, Register{Subject: "s", Schema: avro(userBad)}); r.Version != 3 || r.ID != 3 {
		t.Fatalf("after a soft delete: %+v", r)
	}
	if r := do(t, s, Register{Subject: "s", Schema: avro(userV2)}); r.Version != 4 || r.ID != 2 {
		t.Fatalf("a soft-deleted schema again: %+v", r)
	}

	do(t, s, DeleteSubject{Subject: "s"})
	if r := do(t, s, DeleteSubject{Subject: "s", Permanent: true}); !slices.Equal(r.Versions, []int{1, 2, 3, 4}) {
		t.Fatal(r)
	}
	if got := s.Subjects(true); len(got) != 0 {
		t.Fatalf("after a permanent delete: %v", got)
	}
	if _, err := s.ByID(1); code(err) != CodeSchemaNotFound {
		t.Fatalf("id of a permanently deleted schema: %v", err)
	}
	// Ids are never given twice; versions start again.
	if r := do(t, s, Register{Subject: "s", Schema: avro(userV1)}); r.ID != 4 || r.Version != 1 {
		t.Fatalf("after a permanent delete: %+v", r)
	}
	do(t, s, DeleteVersion{Subject: "s", Version: Latest})
	if r := do(t, s, DeleteVersion{Subject: "s", Version: Latest, Permanent: true}); r.Version != 1 {
		t.Fatal(r)
	}
}

func TestPermanentDeleteDropsConfigAndMode(t *testing.T) {
	s := New()
	do(t, s, Register{Subject: "s", Schema: avro(userV1)})
	do(t, s, SetConfig{Subject: "s", Config: Config{Compatibility: Full}})
	do(t, s, SetMode{Subject: "s", Mode: ReadWrite})
	do(t, s, DeleteSubject{Subject: "s"})
	if c, _ := s.Config("s", false); c.Compatibility != Full {
		t.Fatal("a soft delete dropped the config")
	}
	do(t, s, DeleteSubject{Subject: "s", Permanent: true})
	if _, err := s.Config("s", false); code(err) != CodeSubjectConfigNotConfigured {
		t.Fatal(err)
	}
	if _, err := s.Mode("s", false); code(err) != CodeSubjectModeNotConfigured {
		t.Fatal(err)
	}
}

func TestReferences(t *testing.T) {
	s := New()
	addr := `{"type":"record","name":"Address","namespace":"t","fields":[{"name":"city","type":"string"}]}`
	person := `{"type":"record","name":"Person","namespace":"t","fields":[{"name":"home","type":"t.Address"}]}`
	a := do(t, s, Register{Subject: "addr", Schema: avro(addr)})
	fails(t, s, Register{Subject: "person", Schema: avro(person)}, CodeInvalidSchema)
	fails(t, s, Register{Subject: "person", Schema: Schema{Schema: person,
		References: []Reference{{Name: "t.Address", Subject: "addr", Version: 2}}}}, CodeInvalidSchema)
	p := do(t, s, Register{Subject: "person", Schema: Schema{Schema: person,
		References: []Reference{{Name: "t.Address", Subject: "addr", Version: Latest}}}})
	if v, _ := s.GetVersion("person", 1, false); !slices.Equal(v.References, []Reference{{"t.Address", "addr", 1}}) {
		t.Fatalf("references %v: latest not pinned", v.References)
	}
	if ids, _ := s.ReferencedBy("addr", 1); !slices.Equal(ids, []int{p.ID}) {
		t.Fatalf("ReferencedBy = %v", ids)
	}
	// The same text with other references is another schema.
	if _, err := s.Lookup("person", Schema{Schema: person, References: []Reference{{"t.Address", "addr", 1}}}, false); err != nil {
		t.Fatal(err)
	}

	fails(t, s, DeleteVersion{Subject: "addr", Version: 1}, CodeReferenceExists)
	fails(t, s, DeleteSubject{Subject: "addr"}, CodeReferenceExists)
	do(t, s, DeleteSubject{Subject: "person"})
	fails(t, s, DeleteVersion{Subject: "addr", Version: 1}, CodeReferenceExists) // soft-deleted referrers still use it
	do(t, s, DeleteSubject{Subject: "person", Permanent: true})
	do(t, s, DeleteVersion{Subject: "addr", Version: a.Version})
	do(t, s, DeleteVersion{Subject: "addr", Version: a.Version, Permanent: true})

	// JSON Schema and Protobuf references, by URL and by import path.
	do(t, s, Register{Subject: "jaddr", Schema: jsonSchema(`{"type":"object","properties":{"city":{"type":"string"}}}`)})
	j := do(t, s, Register{Subject: "jperson", Schema: Schema{Type: schema.JSON,
		Schema:     `{"type":"object","properties":{"home":{"$ref":"address.json"}}}`,
		References: []Reference{{"address.json", "jaddr", 1}}}})
	c, err := s.Compiled(j.ID)
	if err != nil || c.Validate([]byte(`{"home":{"city":3}}`), nil) == nil {
		t.Fatalf("the referenced JSON schema is not applied: %v", err)
	}
	do(t, s, Register{Subject: "money", Schema: proto(`syntax = "proto3"; package m; message Money { int64 cents = 1; }`)})
	do(t, s, Register{Subject: "price", Schema: Schema{Type: schema.Protobuf,
		Schema:     `syntax = "proto3"; package m; import "m/money.proto"; message Price { Money amount = 1; }`,
		References: []Reference{{"m/money.proto", "money", 1}}}})
}

func TestConfigAndMode(t *testing.T) {
	s := New()
	if c, _ := s.Config("", false); c.Compatibility != Backward {
		t.Fatalf("default %v", c)
	}
	do(t, s, SetConfig{Config: Config{Compatibility: Full}})
	if c, _ := s.Config("x", true); c.Compatibility != Full {
		t.Fatalf("subject default to global: %v", c)
	}
	do(t, s, SetConfig{Subject: "x", Config: Config{Compatibility: None}})
	if c, _ := s.Config("x", false); c.Compatibility != None {
		t.Fatal(c)
	}
	if r := do(t, s, DeleteConfig{Subject: "x"}); r.Config.Compatibility != None {
		t.Fatal(r)
	}
	if r := do(t, s, DeleteConfig{}); r.Config.Compatibility != Full {
		t.Fatal(r)
	}
	if c, _ := s.Config("", false); c.Compatibility != Backward {
		t.Fatalf("global after delete: %v", c)
	}

	do(t, s, Register{Subject: "s", Schema: avro(userV1)})
	do(t, s, SetMode{Subject: "s", Mode: ReadOnly})
	fails(t, s, Register{Subject: "s", Schema: avro(userV2)}, CodeOperationNotPermitted)
	fails(t, s, DeleteSubject{Subject: "s"}, CodeOperationNotPermitted)
	fails(t, s, DeleteVersion{Subject: "s", Version: 1}, CodeOperationNotPermitted)
	do(t, s, Register{Subject: "t", Schema: avro(userV1)}) // the global mode is READWRITE
	if m, _ := s.Mode("s", false); m != ReadOnly {
		t.Fatal(m)
	}
	if r := do(t, s, DeleteMode{Subject: "s"}); r.Mode != ReadOnly {
		t.Fatal(r)
	}
	do(t, s, SetMode{Mode: ReadOnly})
	fails(t, s, Register{Subject: "s", Schema: avro(userV2)}, CodeOperationNotPermitted)
	do(t, s, DeleteMode{})

	fails(t, s, SetMode{Mode: Import}, CodeOperationNotPermitted)
	fails(t, s, SetMode{Subject: "s", Mode: Import}, CodeOperationNotPermitted)
	do(t, s, SetMode{Subject: "u", Mode: Import})
	// IMPORT takes ids and versions as given, and checks no compatibility.
	if r := do(t, s, Register{Subject: "u", Schema: avro(userV1), ID: 100, Version: 5}); r.ID != 100 || r.Version != 5 {
		t.Fatal(r)
	}
	do(t, s, Register{Subject: "u", Schema: avro(`"int"`), ID: 101, Version: 6})
	fails(t, s, Register{Subject: "u", Schema: avro(`"long"`), ID: 100, Version: 7}, CodeIDDoesNotMatch)
	fails(t, s, Register{Subject: "u", Schema: avro(`"long"`), ID: 102, Version: 6}, CodeInvalidVersion)
	do(t, s, SetMode{Subject: "u", Mode: ReadWrite})
	if r := do(t, s, Register{Subject: "v", Schema: avro(`"bytes"`)}); r.ID != 102 {
		t.Fatalf("next id after an import: %+v", r)
	}
	do(t, s, SetMode{Mode: Import, Force: true})
}

// Reads run concurrently (under the caller's read lock) and fill the
// compiled cache as they go.
func TestConcurrentReads(t *testing.T) {
	s := New()
	do(t, s, Register{Subject: "s", Schema: avro(userV1)})
	do(t, s, Register{Subject: "s", Schema: avro(userV2)})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := s.Lookup("s", avro(userV1), false); err != nil {
				t.Error(err)
			}
			if ok, _, err := s.CheckCompatibility("s", 0, avro(userV2)); !ok || err != nil {
				t.Error(ok, err)
			}
			if _, _, err := s.Plan(Register{Subject: "t", Schema: avro(userV2)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
