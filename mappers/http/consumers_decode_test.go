package httpmap

import (
	"encoding/json"
	"testing"
	"time"
)

// Any body POST /consumers/{group} may get decodes to a valid instance
// or a 42204, never a panic; the schema formats only with a registry.
func FuzzV2ConsumerConfig(f *testing.F) {
	for _, seed := range []string{
		`{"name":"my_consumer","format":"json","auto.offset.reset":"earliest"}`,
		`{"auto.commit.enable":false,"fetch.min.bytes":1024,"consumer.request.timeout.ms":"500"}`,
		`{"id":"old","format":"BINARY","auto.offset.reset":"smallest"}`,
		`{"format":"avro"}`, `{"format":"PROTOBUF"}`, `{"format":"jsonschema","name":"j"}`, `{"name":"a/b"}`, `{"fetch.min.bytes":[1]}`, `{"consumer.request.timeout.ms":1e99}`, `{}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var cfg consumerInstanceConfig
		if json.Unmarshal(body, &cfg) != nil {
			return
		}
		schemas := len(body)%2 == 0
		st, e := newConsumerInstance("g", cfg, time.Minute, schemas)
		if e != nil {
			if e.Code != codeInvalidConsumer || st != nil {
				t.Fatalf("%s: %+v %+v", body, st, e)
			}
			return
		}
		if !validInstanceName.MatchString(st.Name) || !validFormat(st.Format, schemas) ||
			(st.AutoOffsetReset != "earliest" && st.AutoOffsetReset != "latest") ||
			st.FetchMinBytes < -1 || st.RequestTimeout < 0 || st.RequestTimeout > time.Minute.Milliseconds() {
			t.Fatalf("%s: an instance out of bounds: %+v", body, st)
		}
	})
}

func validFormat(f string, schemas bool) bool {
	switch f {
	case "binary", "json":
		return true
	case "avro", "jsonschema", "protobuf":
		return schemas
	}
	return false
}
