package registry

import (
	"reflect"
	"strings"
	"testing"
)

// The records meshka writes, byte for byte: Confluent's layout.
func TestRecordLayout(t *testing.T) {
	s := New()
	recs, _, _ := s.Plan(Register{Subject: "s", Schema: avro(`"string"`)})
	want := []Record{{
		Key:   []byte(`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`),
		Value: []byte(`{"subject":"s","version":1,"id":1,"schema":"\"string\"","deleted":false}`),
	}}
	same(t, recs, want)
	apply(t, s, recs)

	recs, _, _ = s.Plan(Register{Subject: "p", Schema: proto(`syntax = "proto3"; message M {}`)})
	same(t, recs, []Record{{
		Key:   []byte(`{"keytype":"SCHEMA","subject":"p","version":1,"magic":1}`),
		Value: []byte(`{"subject":"p","version":1,"id":2,"schemaType":"PROTOBUF","schema":"syntax = \"proto3\"; message M {}","deleted":false}`),
	}})

	recs, _, _ = s.Plan(SetConfig{Config: Config{Compatibility: Full}})
	same(t, recs, []Record{{Key: []byte(`{"keytype":"CONFIG","magic":0}`), Value: []byte(`{"compatibilityLevel":"FULL"}`)}})
	recs, _, _ = s.Plan(SetConfig{Subject: "s", Config: Config{Compatibility: None}})
	same(t, recs, []Record{{Key: []byte(`{"keytype":"CONFIG","subject":"s","magic":0}`), Value: []byte(`{"subject":"s","compatibilityLevel":"NONE"}`)}})
	recs, _, _ = s.Plan(SetMode{Subject: "s", Mode: ReadOnly})
	same(t, recs, []Record{{Key: []byte(`{"keytype":"MODE","subject":"s","magic":0}`), Value: []byte(`{"subject":"s","mode":"READONLY"}`)}})
	recs, _, _ = s.Plan(DeleteSubject{Subject: "s"})
	same(t, recs, []Record{{Key: []byte(`{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}`), Value: []byte(`{"subject":"s","version":1}`)}})
	apply(t, s, recs)
	recs, _, _ = s.Plan(DeleteSubject{Subject: "s", Permanent: true})
	// A tombstone, and the highest id kept: s/1 was the last to carry it.
	same(t, recs, []Record{
		{Key: []byte(`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`)},
		{Key: []byte(`{"keytype":"NOOP","magic":0}`), Value: []byte(`{"maxId":1}`)},
	})
}

func same(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d: %q", len(got), len(want), got)
	}
	for i := range got {
		if string(got[i].Key) != string(want[i].Key) || string(got[i].Value) != string(want[i].Value) || (got[i].Value == nil) != (want[i].Value == nil) {
			t.Fatalf("record %d:\n%s %s\nwant\n%s %s", i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
		}
	}
}

// What a Confluent registry writes, fields meshka does not know included.
func TestApplyConfluentRecords(t *testing.T) {
	s := New()
	for _, r := range []Record{
		{Key: []byte(`{"keytype":"NOOP","magic":0}`)},
		{Key: []byte(`{"keytype":"SCHEMA","subject":"t-value","version":1,"magic":1}`),
			Value: []byte(`{"subject":"t-value","version":1,"id":7,"md5":"x","metadata":null,"schema":"\"string\"","deleted":false}`)},
		{Key: []byte(`{"keytype":"SCHEMA","subject":"t-value","version":2,"magic":1}`),
			Value: []byte(`{"subject":"t-value","version":2,"id":8,"schemaType":"AVRO","schema":"\"int\""}`)},
		{Key: []byte(`{"keytype":"CONFIG","magic":0}`), Value: []byte(`{"compatibilityLevel":"FORWARD","compatibilityGroup":"g"}`)},
		{Key: []byte(`{"keytype":"CLEAR_SUBJECT","subject":"t-value","magic":0}`), Value: []byte(`{"subject":"t-value"}`)},
		{Key: []byte(`{"keytype":"CONTEXT","tenant":"default","context":".","magic":0}`), Value: []byte(`{}`)},
		{Key: []byte(`{"keytype":"DELETE_SUBJECT","subject":"t-value","magic":0}`), Value: []byte(`{"subject":"t-value","version":1}`)},
	} {
		if err := s.Apply(r); err != nil {
			t.Fatalf("%s: %v", r.Key, err)
		}
	}
	if v, err := s.Versions("t-value", false); err != nil || len(v) != 1 || v[0] != 2 {
		t.Fatal(v, err)
	}
	if c, _ := s.Config("", false); c.Compatibility != Forward {
		t.Fatal(c)
	}
	if r, _, _ := s.Plan(Register{Subject: "u", Schema: avro(`"bytes"`)}); len(r) != 1 {
		t.Fatal(r)
	} else if apply(t, s, r); s.maxID != 9 {
		t.Fatalf("max id %d", s.maxID)
	}
}

// A permanent delete of the last version with the highest id writes that
// id down, so compaction cannot make it be given again.
func TestMaxIDSurvivesCompaction(t *testing.T) {
	s := New()
	var log []Record
	for _, op := range []Op{
		Register{Subject: "s", Schema: avro(`"string"`)},
		Register{Subject: "t", Schema: avro(`"int"`)},
		DeleteSubject{Subject: "t"},
		DeleteSubject{Subject: "t", Permanent: true},
	} {
		recs, _, err := s.Plan(op)
		if err != nil {
			t.Fatal(err)
		}
		apply(t, s, recs)
		log = append(log, recs...)
	}
	c := New()
	apply(t, c, compact(log))
	if r, _, _ := c.Plan(Register{Subject: "u", Schema: avro(`"bytes"`)}); len(r) != 1 || !contains(r[0].Value, `"id":3`) {
		t.Fatalf("after compaction: %s", r[0].Value)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

func TestApplyRefuses(t *testing.T) {
	s := New()
	apply(t, s, []Record{{Key: schemaKey("s", 1), Value: []byte(`{"subject":"s","version":1,"id":1,"schema":"\"string\""}`)}})
	for _, r := range []Record{
		{Key: nil},
		{Key: []byte(`not json`)},
		{Key: []byte(`{"keytype":"WHAT","magic":0}`)},
		{Key: []byte(`{"keytype":"SCHEMA","magic":1}`), Value: []byte(`{}`)},
		{Key: schemaKey("s", 2), Value: []byte(`{"subject":"s","version":3,"id":2,"schema":"x"}`)},
		{Key: schemaKey("s", 2), Value: []byte(`{"subject":"s","version":2,"id":0,"schema":"x"}`)},
		{Key: schemaKey("s", 2), Value: []byte(`{"subject":"s","version":2,"id":2,"schemaType":"XML","schema":"x"}`)},
		{Key: schemaKey("s", 2), Value: []byte(`{"subject":"s","version":2,"id":1,"schema":"\"int\""}`)}, // id 1 is "string"
		{Key: schemaKey("s", 2), Value: []byte(`{"subject":"s","version":2,"id":2,"schema":"x"} trailing`)},
		{Key: configKey(""), Value: []byte(`{"compatibilityLevel":"SIDEWAYS"}`)},
		{Key: modeKey(""), Value: []byte(`{"mode":"WHATEVER"}`)},
		{Key: deleteSubjectKey("s"), Value: []byte(`[]`)},
		{Key: noopKey(), Value: []byte(`{"maxId":"x"}`)},
	} {
		before := snapshot(s)
		if err := s.Apply(r); err == nil {
			t.Errorf("Apply(%s, %s) = nil", r.Key, r.Value)
		}
		if !reflect.DeepEqual(before, snapshot(s)) {
			t.Errorf("Apply(%s, %s) changed the state", r.Key, r.Value)
		}
	}
}

func FuzzApply(f *testing.F) {
	s := New()
	for _, op := range []Op{
		Register{Subject: "s", Schema: avro(userV1)},
		SetConfig{Subject: "s", Config: Config{Compatibility: Full}},
		SetMode{Mode: ReadOnly},
		DeleteSubject{Subject: "s"},
	} {
		recs, _, _ := s.Plan(op)
		for _, r := range recs {
			f.Add(r.Key, r.Value, false)
			_ = s.Apply(r)
		}
	}
	f.Add(schemaKey("s", 1), []byte(nil), true)
	f.Add(noopKey(), []byte(`{"maxId":5}`), false)
	f.Fuzz(func(t *testing.T, k, v []byte, tombstone bool) {
		s := New()
		_ = s.Apply(Record{Key: schemaKey("a", 1), Value: []byte(`{"subject":"a","version":1,"id":1,"schema":"\"string\""}`)})
		if tombstone {
			v = nil
		}
		if err := s.Apply(Record{Key: k, Value: v}); err != nil {
			return
		}
		// Whatever was applied, the state still answers and plans.
		for _, name := range s.Subjects(true) {
			if _, err := s.Versions(name, true); err != nil {
				t.Fatal(err)
			}
			_, _, _ = s.Plan(DeleteSubject{Subject: name})
			_, _, _ = s.CheckCompatibility(name, 0, avro(userV1))
		}
		_, _, _ = s.Plan(Register{Subject: "b", Schema: avro(userV2)})
	})
}
