package registry

import (
	"testing"
)

// Three versions per format: v2 breaks with v1 (registered under NONE),
// v3 reads and is read by v2 but not v1. So the plain levels accept v3, the
// transitive ones refuse it.
var triples = map[string][3]Schema{
	"avro": {
		avro(`{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}`),
		avro(`{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`),
		avro(`{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":"x"}]}`),
	},
	"json": {
		jsonSchema(`{"type":"object","properties":{"a":{"type":"string"}}}`),
		jsonSchema(`{"type":"object","properties":{"a":{"type":"integer"}}}`),
		jsonSchema(`{"type":"object","properties":{"a":{"type":"integer","description":"v3"}}}`),
	},
	"protobuf": {
		proto(`syntax = "proto3"; message M { string a = 1; }`),
		proto(`syntax = "proto3"; message M { int32 a = 1; }`),
		proto(`syntax = "proto3"; message M { int32 renamed = 1; }`),
	},
}

func TestLevelsTransitive(t *testing.T) {
	for format, v := range triples {
		for level, ok := range map[Level]bool{
			None: true, Backward: true, Forward: true, Full: true,
			BackwardTransitive: false, ForwardTransitive: false, FullTransitive: false,
		} {
			t.Run(format+"/"+string(level), func(t *testing.T) {
				s := New()
				do(t, s, SetConfig{Subject: "s", Config: Config{Compatibility: None}})
				do(t, s, Register{Subject: "s", Schema: v[0]})
				do(t, s, Register{Subject: "s", Schema: v[1]})
				do(t, s, SetConfig{Subject: "s", Config: Config{Compatibility: level}})
				compatible, reasons, err := s.CheckCompatibility("s", 0, v[2])
				if err != nil || compatible != ok || compatible != (len(reasons) == 0) {
					t.Fatalf("CheckCompatibility = %v %q %v, want %v", compatible, reasons, err, ok)
				}
				_, _, err = s.Plan(Register{Subject: "s", Schema: v[2]})
				if want := map[bool]int{true: 0, false: CodeIncompatibleSchema}[ok]; code(err) != want {
					t.Fatalf("Register: %v, want code %d", err, want)
				}
				// Against version 1 alone, at any level but NONE, v3 fails.
				compatible, _, err = s.CheckCompatibility("s", 1, v[2])
				if err != nil || compatible != (level == None) {
					t.Fatalf("against version 1: %v %v", compatible, err)
				}
				// Soft-deleting version 1 takes it out of the transitive check.
				do(t, s, DeleteVersion{Subject: "s", Version: 1})
				if compatible, reasons, _ := s.CheckCompatibility("s", 0, v[2]); !compatible {
					t.Fatalf("with version 1 deleted: %q", reasons)
				}
			})
		}
	}
}

// Directions: BACKWARD is the new schema reading the old one's data,
// FORWARD the old reading the new's.
func TestLevelsDirection(t *testing.T) {
	withDefault := avro(userV2) // reads userV1's data, and userV1 reads its data
	noDefault := avro(userBad)  // cannot read userV1's data; userV1 reads its data
	for _, tc := range []struct {
		level  Level
		next   Schema
		wantOK bool
	}{
		{Backward, withDefault, true},
		{Backward, noDefault, false},
		{Forward, noDefault, true},
		{Full, withDefault, true},
		{Full, noDefault, false},
		{None, avro(`"int"`), true},
		{Forward, avro(`"int"`), false},
	} {
		s := New()
		do(t, s, SetConfig{Config: Config{Compatibility: tc.level}})
		do(t, s, Register{Subject: "s", Schema: avro(userV1)})
		if ok, reasons, _ := s.CheckCompatibility("s", Latest, tc.next); ok != tc.wantOK {
			t.Errorf("%s %s: %v %q", tc.level, tc.next.Schema, ok, reasons)
		}
	}
}

func TestCheckWithoutVersions(t *testing.T) {
	s := New()
	if ok, _, err := s.CheckCompatibility("empty", 0, avro(userV1)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, _, err := s.CheckCompatibility("empty", Latest, avro(userV1)); code(err) != CodeSubjectNotFound {
		t.Fatal(err)
	}
}

// The classic transitive catch without a change of level: v2 removes a
// field and reserves its number, v3 reuses the number with another type.
func TestProtobufNumberReuse(t *testing.T) {
	s := New()
	do(t, s, SetConfig{Config: Config{Compatibility: BackwardTransitive}})
	do(t, s, Register{Subject: "p", Schema: proto(`syntax = "proto3"; message M { int32 a = 1; int32 b = 2; }`)})
	do(t, s, Register{Subject: "p", Schema: proto(`syntax = "proto3"; message M { int32 a = 1; reserved 2; }`)})
	v3 := proto(`syntax = "proto3"; message M { int32 a = 1; string b = 2; }`)
	fails(t, s, Register{Subject: "p", Schema: v3}, CodeIncompatibleSchema)
	do(t, s, SetConfig{Config: Config{Compatibility: Backward}})
	do(t, s, Register{Subject: "p", Schema: v3})
}
