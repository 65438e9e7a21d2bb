package httpmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/meshka/meshka/schema"
)

// The framer finds the same objects however the body is split, strings
// holding braces and escaped quotes included, and bounds each.
func TestFramer(t *testing.T) {
	body := ` {"a":"}{\"\\"} {"b":[{"c":1}]}` + "\n\t" + `{}`
	want := []string{`{"a":"}{\"\\"}`, `{"b":[{"c":1}]}`, `{}`}
	for name, r := range map[string]io.Reader{
		"whole": strings.NewReader(body), "a byte at a time": iotest.OneByteReader(strings.NewReader(body)),
		"error with the last data": iotest.DataErrReader(strings.NewReader(body)),
	} {
		fr := newFramer(r, 64)
		var got []string
		for {
			f, err := fr.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got = append(got, string(f))
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: %q", name, got)
		}
	}
	if _, err := newFramer(strings.NewReader(`{"a":"`+strings.Repeat("x", 100)+`"}`), 64).next(); !errors.Is(err, errFrameTooLarge) {
		t.Errorf("past the bound: %v", err)
	}
	if _, err := newFramer(strings.NewReader(`{"a":`), 64).next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut short: %v", err)
	}
}

// Timestamps are written as the REST Proxy writes them.
func TestV3Time(t *testing.T) {
	for in, want := range map[string]string{
		"2021-02-05T19:14:42Z": "2021-02-05T19:14:42Z", "2021-02-05T20:14:42.9+01:00": "2021-02-05T19:14:42.900Z",
		"2021-02-05T19:14:42.123456Z": "2021-02-05T19:14:42.123Z",
	} {
		ts, _ := time.Parse(time.RFC3339Nano, in)
		if got := v3Time(ts); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// FuzzV3Record: whatever the bytes of a v3 produce body, the framer
// splits them into bounded objects or stops with an error, and each
// object decodes to a record or to an error in the REST Proxy's shape;
// never a panic. A JSON value is written as valid JSON text; a key or
// value in a schema format is left to encode, with no bytes yet, and
// names its schema in one way at most.
func FuzzV3Record(f *testing.F) {
	for _, s := range []string{
		`{"partition_id":1,"headers":[{"name":"Header-1","value":"SGVhZGVyLTE="},{"name":"Header-2","value":"SGVhZGVyLTI="}],` +
			`"key":{"type":"BINARY","data":"Zm9vYmFy"},"value":{"type":"JSON","data":{"foo":"bar"}},"timestamp":"2021-02-05T19:14:42Z"}`,
		`{"value":{"type":"STRING","data":"My message"}}`,
		`{"key":{"subject_name_strategy":"TOPIC_NAME","schema_id":1,"data":1000},"value":{"schema_version":1,"data":{"foo":"bar"}}}`,
		`{"value":{"type":"JSON","data":"ONE"}} {"value":{"type":"JSON","data":"TWO"}}`,
		`{"key":{"type":"AVRO","schema":"{\"type\":\"string\"}","data":"k"},"value":{"type":"PROTOBUF","subject":"s","schema_version":2,"data":{"a":1}}}`,
		`{"value":{"type":"JSONSCHEMA","schema_id":3,"schema_version":1,"data":{}}}`,
		`{"value":{"type":"AVRO","subject_name_strategy":"RECORD_NAME","data":null}}`,
		`{"value":{"schema":"x","data":1}}`,
		`{"value":{"type":"JSON","schema_id":1,"data":1}}`,
		`{"value":{"type":"BINARY","data":null}}{}`,
		`{"headers":[{"name":"h"}],"value":{"type":"JSON","data":"a\"}\\"}}`,
		`{"value": {"type": "JSON", "data": }`,
		`[{"value":1}]`,
		"{\"value\":{\"type\":\"STRING\",\"data\":\"\xff\"}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		const max = 4096
		fr := newFramer(bytes.NewReader(body), max)
		for range len(body) + 1 {
			frame, err := fr.next()
			if err == io.EOF {
				return
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					t.Fatalf("a cut body reported as its end: %v", err)
				}
				return
			}
			if len(frame) > max || frame[0] != '{' {
				t.Fatalf("frame of %d bytes: %q", len(frame), frame)
			}
			rec := decodeV3Record(frame)
			if rec.err != nil {
				if s := rec.err.status(); s < 400 || s > 599 {
					t.Fatalf("error %v has status %d", rec.err, s)
				}
				continue
			}
			if rec.value != nil && rec.value.Type == "JSON" && rec.rec.Value != nil && !json.Valid(rec.rec.Value) {
				t.Fatalf("JSON value written as %q", rec.rec.Value)
			}
			for _, sd := range []*v3SchemaData{rec.keySchema, rec.valueSchema} {
				if sd == nil {
					continue
				}
				named := 0
				for _, given := range []bool{sd.spec.id > 0, sd.spec.version > 0, sd.spec.text != ""} {
					if given {
						named++
					}
				}
				if named > 1 || sd.spec.id < 0 || sd.spec.version < 0 || (sd.data != nil && !json.Valid(sd.data)) {
					t.Fatalf("%s: schema data %+v", frame, sd)
				}
			}
			if rec.keySchema != nil && (rec.rec.Key != nil || rec.key != nil) || rec.valueSchema != nil && (rec.rec.Value != nil || rec.value != nil) {
				t.Fatalf("%s: a key or value with a schema came with bytes", frame)
			}
			if rec.rec.Partition < -1 {
				t.Fatalf("partition %d", rec.rec.Partition)
			}
		}
		t.Fatal("the framer did not end")
	})
}

// FuzzV2Spec: whatever a v2 request's key_schema and key_schema_id hold,
// they name one schema (an id above 0, else a text), none, or are
// refused with a 422; never a panic.
func FuzzV2Spec(f *testing.F) {
	for _, s := range [][2]string{{`"{\"type\":\"string\"}"`, ``}, {``, `7`}, {`"x"`, `3`}, {`null`, `null`}, {`1`, `"1"`},
		{``, `-1`}, {``, `1e3`}, {`""`, ``}, {`{}`, `2.5`}} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, text, id []byte) {
		if (len(text) > 0 && !json.Valid(text)) || (len(id) > 0 && !json.Valid(id)) {
			return // the request's decoder refuses these before
		}
		spec, given, e := v2Spec(schema.Avro, text, id, "key")
		if e != nil {
			if e.status() != 422 || given {
				t.Fatalf("%s %s: %+v given %v", text, id, e, given)
			}
			return
		}
		if given != (spec.id > 0 || spec.text != "") || spec.id < 0 || (spec.id > 0 && spec.text != "") {
			t.Fatalf("%s %s: %+v given %v", text, id, spec, given)
		}
	})
}
