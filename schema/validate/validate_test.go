package validate

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/meshka/meshka/records"
	"github.com/meshka/meshka/schema"
	"github.com/meshka/meshka/schema/registry"
	"github.com/meshka/meshka/schema/wire"
)

const (
	userAvro   = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"}]}`
	userAvroV2 = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"},{"name":"email","type":"string","default":""}]}`
	userJSON   = `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}`
	userProto  = `syntax = "proto3"; package t; message User { string name = 1; int32 age = 2; } message Other { int64 n = 1; }`
)

// register registers text under subject and returns its id.
func register(t testing.TB, st *registry.State, subject string, typ schema.Type, text string) int {
	t.Helper()
	recs, res, err := st.Plan(registry.Register{Subject: subject, Schema: registry.Schema{Type: typ, Schema: text}})
	if err != nil {
		t.Fatalf("register %s: %v", subject, err)
	}
	for _, r := range recs {
		if err := st.Apply(r); err != nil {
			t.Fatal(err)
		}
	}
	return res.ID
}

// avroUser is the Avro binary of a User.
func avroUser(name string, age int32) []byte {
	b := binary.AppendVarint(nil, int64(len(name)))
	b = append(b, name...)
	return binary.AppendVarint(b, int64(age))
}

func protoUser(name string, age int32) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(age))
}

func framed(id int, indexes []int, payload []byte) []byte {
	return append(wire.Append(nil, uint32(id), indexes), payload...)
}

type fixture struct {
	st                          *registry.State
	avroID, avroV2, jsonID, pID int
	src                         *StateSource
}

func newFixture(t testing.TB) *fixture {
	st := registry.New()
	f := &fixture{st: st}
	f.avroID = register(t, st, "users-value", schema.Avro, userAvro)
	f.avroV2 = register(t, st, "users-value", schema.Avro, userAvroV2)
	f.jsonID = register(t, st, "events-value", schema.JSON, userJSON)
	f.pID = register(t, st, "proto-value", schema.Protobuf, userProto)
	f.src = NewStateSource(st, nil)
	return f
}

func mustNew(t testing.TB, src Source, rules ...Rule) *Validator {
	t.Helper()
	v, err := New(rules, src)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func spec(f Format) *Spec { return &Spec{Format: f} }

func TestValidCheckFormats(t *testing.T) {
	f := newFixture(t)
	v := mustNew(t, f.src,
		Rule{Topic: "avro", Value: spec(Avro), ValidateProduce: true},
		Rule{Topic: "avro-pinned", Value: &Spec{Format: Avro, Subject: "users-value", Version: 1}, ValidateProduce: true},
		Rule{Topic: "avro-latest", Value: &Spec{Format: Avro, Subject: "users-value", Version: Latest}, ValidateProduce: true},
		Rule{Topic: "avro-subject", Value: &Spec{Format: Avro, Subject: "users-value"}, ValidateProduce: true},
		Rule{Topic: "json", Value: spec(JSON), ValidateProduce: true},
		Rule{Topic: "proto", Value: spec(Protobuf), ValidateProduce: true},
		Rule{Topic: "plain", Key: spec(String), Value: spec(Int32), ValidateProduce: true},
		Rule{Topic: "long", Key: spec(Int64), Value: spec(Bytes), ValidateProduce: true},
		Rule{Topic: "off", Value: spec(Int32)},
	)
	good := framed(f.avroID, nil, avroUser("ann", 30))
	cases := []struct {
		topic      string
		key, value []byte
		want       string // "" for valid; else a part of the error
	}{
		{"avro", nil, good, ""},
		{"avro", nil, nil, ""}, // a tombstone
		{"avro", nil, framed(f.avroID, nil, avroUser("ann", 30)[:3]), "value (schema id 1): avro payload"},
		{"avro", nil, append(framed(f.avroID, nil, avroUser("ann", 30)), 0), "bytes after the value"},
		{"avro", nil, []byte{0, 0, 0}, "value: not in the schema registry's wire format: short input"},
		{"avro", nil, []byte{1, 0, 0, 0, 1, 2}, "bad magic byte"},
		{"avro", nil, framed(99, nil, avroUser("a", 1)), "value (schema id 99): Schema 99 not found"},
		{"avro", nil, framed(f.jsonID, nil, []byte(`{}`)), "the schema is JSON, the topic wants AVRO"},
		{"avro-pinned", nil, good, ""},
		{"avro-pinned", nil, framed(f.avroV2, nil, append(avroUser("a", 1), 0)), "subject users-value version 1 is schema id 1"},
		{"avro-latest", nil, good, "subject users-value version latest is schema id 2"},
		{"avro-latest", nil, framed(f.avroV2, nil, append(avroUser("a", 1), 0)), ""},
		{"avro-subject", nil, framed(f.avroV2, nil, append(avroUser("a", 1), 0)), ""},
		{"json", nil, framed(f.jsonID, nil, []byte(`{"name":"a","age":3}`)), ""},
		{"json", nil, framed(f.jsonID, nil, []byte(`{"name":"a"}`)), "value (schema id 3)"},
		{"json", nil, framed(f.jsonID, nil, []byte(`{"name":`)), "value (schema id 3)"},
		{"proto", nil, framed(f.pID, []int{0}, protoUser("a", 3)), ""},
		{"proto", nil, framed(f.pID, []int{1}, protowire.AppendVarint([]byte{0x08}, 5)), ""},
		{"proto", nil, framed(f.pID, []int{0}, []byte{0x0a, 0x05, 'a'}), "value (schema id 4): protobuf payload: t.User"},
		{"proto", nil, framed(f.pID, []int{7}, protoUser("a", 3)), "value (schema id 4)"},
		{"plain", []byte("héllo"), []byte{0, 0, 0, 1}, ""},
		{"plain", []byte("h\xffi"), []byte{0, 0, 0, 1}, "key: not valid UTF-8 (at byte 1)"},
		{"plain", []byte("k"), []byte{0, 0, 1}, "value: an int32 is 4 bytes, got 3"},
		{"plain", nil, nil, ""},
		{"long", make([]byte, 8), []byte("\xff anything"), ""},
		{"long", make([]byte, 4), nil, "key: an int64 is 8 bytes, got 4"},
		{"off", nil, []byte{1}, ""},
		{"no-rule", []byte{0xff}, []byte{1}, ""},
	}
	for _, c := range cases {
		err := v.Check(c.topic, c.key, c.value)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s %x/%x: %v", c.topic, c.key, c.value, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s %x/%x: err %v, want %q", c.topic, c.key, c.value, err, c.want)
		}
		var ve *Error
		if err != nil && !errors.As(err, &ve) {
			t.Errorf("%s: %T is not an *Error", c.topic, err)
		}
	}
}

func TestValidRulePrecedence(t *testing.T) {
	v := mustNew(t, nil,
		Rule{Prefix: "a.", Value: spec(Int32), ValidateProduce: true},
		Rule{Prefix: "a.b.", Value: spec(Int64), ValidateProduce: true},
		Rule{Topic: "a.b.c", Value: spec(String), ValidateProduce: true},
		Rule{Topic: "a.b.free", Value: spec(Int32)}, // exempt from a.b.
	)
	for topic, want := range map[string]Format{"a.x": Int32, "a.b.x": Int64, "a.b.c": String, "a.b.cd": Int64, "a.b.free": Int32, "b": ""} {
		r := v.Rule(topic)
		switch {
		case want == "" && r != nil:
			t.Errorf("%s: rule %+v", topic, r)
		case want != "" && (r == nil || r.Value.Format != want):
			t.Errorf("%s: rule %+v, want %s", topic, r, want)
		}
	}
	if v.Validates("a.b.free") || !v.Validates("a.b.c") || v.Validates("b") {
		t.Error("Validates")
	}
	if err := v.Check("a.b.free", nil, []byte{1}); err != nil {
		t.Errorf("exempt topic: %v", err)
	}
	if err := v.Check("a.b.x", nil, []byte{1, 2, 3, 4}); err == nil {
		t.Error("a.b.x took the shorter prefix's rule")
	}
}

func TestValidNew(t *testing.T) {
	if _, err := New([]Rule{{Topic: "t", Value: spec(Avro), ValidateProduce: true}}, nil); !errors.Is(err, ErrNoSource) {
		t.Errorf("avro without a source: %v", err)
	}
	if _, err := New([]Rule{{Topic: "t", Value: spec("xml")}}, nil); err == nil {
		t.Error("unknown format accepted")
	}
	if _, err := New([]Rule{{Topic: "t", Prefix: "p"}}, nil); err == nil {
		t.Error("topic and prefix accepted")
	}
	var nilV *Validator
	if nilV.Validates("t") || nilV.Rule("t") != nil {
		t.Error("a nil Validator validates")
	}
}

func TestValidCheckBatch(t *testing.T) {
	f := newFixture(t)
	v := mustNew(t, f.src, Rule{Topic: "users", Key: spec(String), Value: spec(Avro), ValidateProduce: true})
	recs := []records.Record{
		{Key: []byte("a"), Value: framed(f.avroID, nil, avroUser("ann", 1))},
		{Key: []byte("b"), Value: []byte("not avro")},
		{Key: []byte("c"), Value: framed(f.avroID, nil, avroUser("bob", 2))},
		{Key: []byte("\xff"), Value: framed(f.avroID, nil, avroUser("cy", 3))},
	}
	for _, codec := range []records.Codec{records.CodecNone, records.CodecLZ4, records.CodecZstd} {
		batch, err := records.EncodeBatch(recs, codec)
		if err != nil {
			t.Fatal(err)
		}
		errs := v.CheckBatch("users", batch)
		if len(errs) != 2 || errs[0].Index != 1 || errs[1].Index != 3 {
			t.Fatalf("%s: %v", codec, errs)
		}
		if !strings.HasPrefix(errs[0].Err.Error(), "value: not in the schema registry's wire format") || !strings.HasPrefix(errs[1].Err.Error(), "key: not valid UTF-8") {
			t.Errorf("%s: %v", codec, errs)
		}
		if errs := v.CheckBatch("other", batch); errs != nil {
			t.Errorf("no rule: %v", errs)
		}
		// Two batches: the indexes run on across them.
		two := append(append([]byte(nil), batch...), batch...)
		if errs := v.CheckBatch("users", two); len(errs) != 4 || errs[2].Index != 5 || errs[3].Index != 7 {
			t.Errorf("%s, two batches: %v", codec, errs)
		}
	}
	good, _ := records.EncodeBatch(recs[:1], records.CodecNone)
	if errs := v.CheckBatch("users", good); errs != nil {
		t.Errorf("a good batch: %v", errs)
	}
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 0xff // the CRC no longer matches
	if errs := v.CheckBatch("users", bad); len(errs) != 1 || errs[0].Index != -1 {
		t.Errorf("a corrupt batch: %v", errs)
	}
	if errs := v.CheckBatch("users", good[:len(good)-1]); len(errs) != 1 || errs[0].Index != -1 {
		t.Errorf("a truncated batch: %v", errs)
	}
	legacy := append([]byte(nil), good...)
	legacy[16] = 1
	if errs := v.CheckBatch("users", legacy); len(errs) != 1 || errs[0].Index != -1 || !strings.Contains(errs[0].Err.Error(), "message format v1") {
		t.Errorf("a magic 1 batch: %v", errs)
	}
}
