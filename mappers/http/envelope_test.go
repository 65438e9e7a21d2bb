package httpmap

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/meshka/meshka/mesh"
)

// appendJSONString reads back as encoding/json's string of the same
// bytes (invalid UTF-8 as U+FFFD), and an envelope of such bytes is JSON.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote \" back \\ slash", "\n\r\t\x00\x1f\x7f", "\xff\xfe", "é ☃ \u2028\u2029 😀", "{\"a\":1}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		var got, want string
		if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil {
			t.Fatalf("%q: %v", appendJSONString(nil, s), err)
		}
		b, _ := json.Marshal(string(s))
		json.Unmarshal(b, &want)
		if got != want {
			t.Fatalf("%q read back as %q, want %q", s, got, want)
		}
		rec := mesh.Record{Topic: "t", Key: s, Value: s, Headers: []mesh.Header{{Key: string(s), Value: s}, {Key: "x", Value: s}},
			Timestamp: time.UnixMilli(1764615600000)}
		env := appendEnvelope(nil, &rec, "AQMAAAJUBAA")
		var e struct {
			Key       *string
			Value     json.RawMessage
			Headers   map[string]string
			Timestamp int64
		}
		if err := json.Unmarshal(env, &e); err != nil || e.Key == nil || *e.Key != want || e.Headers["x"] != want || e.Timestamp != 1764615600000 {
			t.Fatalf("envelope %s: %v %+v", env, err, e)
		}
		var v string
		if json.Valid(s) && string(e.Value) != string(bytes.TrimSpace(s)) || !json.Valid(s) && (json.Unmarshal(e.Value, &v) != nil || v != want) {
			t.Fatalf("value %s of %q", e.Value, s)
		}
	})
}
