package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestTopicsConfig(t *testing.T) {
	got, errs := load(t, `topics:
  - topic: orders
    key: {format: string}
    value: {format: avro, subject: orders-value, version: 3}
  - prefix: "metrics."
    value:
      format: int64
    validate_produce: false
  - topic: events
    value: {format: json, subject: events-value, version: latest}
`)
	if errs != nil {
		t.Fatalf("unexpected errors:\n%v", errs)
	}
	want := []TopicRule{
		{Topic: "orders", Key: &FormatSpec{Format: "string", SchemaID: "record"},
			Value: &FormatSpec{Format: "avro", Subject: "orders-value", Version: "3", SchemaID: "record"}, ValidateProduce: true},
		{Prefix: "metrics.", Value: &FormatSpec{Format: "int64", SchemaID: "record"}},
		{Topic: "events", Value: &FormatSpec{Format: "json", Subject: "events-value", Version: "latest", SchemaID: "record"}, ValidateProduce: true},
	}
	if !reflect.DeepEqual(got.Topics, want) {
		t.Fatalf("got  %+v\nwant %+v", got.Topics, want)
	}
	for s, n := range map[string]int{"": 0, "latest": -1, "7": 7} {
		if v, err := ParseSchemaVersion(s); err != nil || v != n {
			t.Errorf("ParseSchemaVersion(%q) = %d, %v", s, v, err)
		}
	}
	if _, err := ParseSchemaVersion("0"); err == nil {
		t.Error("version 0 accepted")
	}
}

func TestTopicsConfigErrors(t *testing.T) {
	_, errs := load(t, `topics:
  - topic: a
    value: {format: xml}
  - topic: a
  - prefix: p
    topic: q
  - value: {format: string}
  - prefix: "bad/"
    key: {format: string, subject: s}
    value: {format: avro, version: 2}
  - topic: b
    value: {format: protobuf, subject: s, version: first, schema_id: header}
  - topic: c
    value: {format: avro, subjct: s}
    validate_produce: maybe
`)
	want := []struct {
		line int
		path string
		msg  string
	}{
		{3, "topics[0].value.format", `must be one of avro, protobuf, json, string, int32, int64, bytes; got "xml"`},
		{4, "topics[1].topic", `duplicate topic "a" (also topics[0])`},
		{5, "topics[2].prefix", "a rule has a topic or a prefix, not both"},
		{7, "topics[3]", "needs a topic or a prefix"},
		{8, "topics[4].prefix", `invalid topic name "bad/"`},
		{9, "topics[4].key.subject", "only avro, protobuf and json have a subject, not string"},
		{10, "topics[4].value.version", "a version needs a subject"},
		{12, "topics[5].value.version", `must be latest or a version number from 1 to 2147483647, got "first"`},
		{12, "topics[5].value.schema_id", `must be record`},
		{14, "topics[6].value.subjct", `unknown key "subjct" (did you mean "subject"?)`},
		{15, "topics[6].validate_produce", "expected true or false"},
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), errs)
	}
	for i, w := range want {
		e := errs[i]
		if e.Line != w.line || e.Path != w.path || !strings.Contains(e.Msg, w.msg) || e.Column == 0 {
			t.Errorf("error %d: %d:%d %s: %s\nwant line %d %s: %s", i, e.Line, e.Column, e.Path, e.Msg, w.line, w.path, w.msg)
		}
	}
}
