package httpmap_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	tavro "github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
	httpmap "github.com/meshka/meshka/mappers/http"
	"github.com/meshka/meshka/schema/protobuf"
)

// The schemas of the format tests: a user (name, age) in each format, and
// a string key in Avro and JSON Schema.
const (
	userAvro       = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"}]}`
	userJSONSchema = `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}`
	userProto      = "syntax = \"proto3\";\npackage people;\nmessage User { string name = 1; int32 age = 2; }\n"
)

// schemaFormats are the three formats as the v2 media types, the v3
// types and franz-go's registry client name them, each on its own topic
// (its subjects <topic>-key and <topic>-value), with a user a schema
// takes, one it refuses and the key schema.
var schemaFormats = []struct {
	v2, v3    string
	srType    sr.SchemaType
	schema    string
	keySchema string // "": the format's keys are not tested
	good, bad string
}{
	{"avro", "AVRO", sr.TypeAvro, userAvro, `{"type":"string"}`, `{"name":"ann","age":31}`, `{"name":"bob","age":"old"}`},
	{"jsonschema", "JSONSCHEMA", sr.TypeJSON, userJSONSchema, `{"type":"string"}`, `{"name":"ann","age":31}`, `{"name":"bob","age":"old"}`},
	{"protobuf", "PROTOBUF", sr.TypeProtobuf, userProto, "", `{"name":"ann","age":31}`, `{"name":"bob","age":"old"}`},
}

// startSchemas is a node with the Confluent API and the built-in registry
// on, upstream having a topic per schema format besides events.
func startSchemas(t *testing.T) (*testenv.Env, string, string) {
	t.Helper()
	env := testenv.StartWith(t, []kfake.Opt{kfake.SeedTopics(3, "events", "items", "avro", "jsonschema", "protobuf", "users", "people")},
		func(cfg *config.Config) {
			cfg.HTTP.Listen = "127.0.0.1:0"
			cfg.HTTP.Routes = routes
		}, confluentOn, registryOn)
	b, ok := env.Node.Binding("http")
	if !ok {
		t.Fatal("no HTTP binding")
	}
	base := "http://" + b.(*httpmap.Server).Addr().String()
	return env, base, base + "/v3/clusters/" + clusterID
}

// readTopic reads n records of topic from upstream directly, in offset
// order per partition.
func readTopic(t *testing.T, env *testenv.Env, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := env.DirectClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	if len(out) < n {
		t.Fatalf("%s: read %d records, want %d", topic, len(out), n)
	}
	return out
}

// decodeUser decodes a record's value, in the wire format, with the
// schema the registry (read through franz-go's client) has under its id,
// with the format's own library: twmb/avro for Avro, dynamicpb for
// Protobuf, the JSON itself for JSON Schema. It checks the header names
// wantID.
func decodeUser(t *testing.T, cl *sr.Client, v []byte, wantID int) map[string]any {
	t.Helper()
	var h sr.ConfluentHeader
	id, rest, err := h.DecodeID(v)
	if err != nil || id != wantID {
		t.Fatalf("value %x: schema id %d (%v), want %d", v, id, err, wantID)
	}
	ss, err := cl.SchemaByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	switch ss.Type {
	case sr.TypeAvro:
		s, err := tavro.Parse(ss.Schema)
		if err != nil {
			t.Fatal(err)
		}
		var u struct {
			Name string `avro:"name"`
			Age  int32  `avro:"age"`
		}
		if _, err := s.Decode(rest, &u); err != nil {
			t.Fatal(err)
		}
		out["name"], out["age"] = u.Name, float64(u.Age)
	case sr.TypeProtobuf:
		idx, rest, err := h.DecodeIndex(rest, 8)
		if err != nil || !reflect.DeepEqual(idx, []int{0}) {
			t.Fatalf("message index %v %v", idx, err)
		}
		ps, err := protobuf.Parse(ss.Schema, nil)
		if err != nil {
			t.Fatal(err)
		}
		md, _ := ps.Message(idx)
		m := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(rest, m); err != nil {
			t.Fatal(err)
		}
		j, _ := protojson.Marshal(m)
		json.Unmarshal(j, &out)
	case sr.TypeJSON:
		if err := json.Unmarshal(rest, &out); err != nil {
			t.Fatalf("%v: %q", err, rest)
		}
	}
	return out
}

var ann = map[string]any{"name": "ann", "age": float64(31)}

// v2 produce in each schema format, as the REST Proxy's documentation
// shows it: schemas given as text are registered under <topic>-key and
// <topic>-value and their ids answered; the records are in the wire
// format under those ids (franz-go reads them back with the registry's
// schema); a record the schema refuses gets 42203 in its place while the
// others are written; the same text again, or the ids, find the same
// schemas without a new version.
func TestConfluentV2SchemaProduce(t *testing.T) {
	env, base, _ := startSchemas(t)
	cl := srClient(t, base)
	ctx := context.Background()
	for _, f := range schemaFormats {
		ct := map[string]string{"Content-Type": "application/vnd.kafka." + f.v2 + ".v2+json"}
		q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
		keyPart, key := "", ""
		if f.keySchema != "" {
			keyPart, key = `"key_schema": `+q(f.keySchema)+`, `, `"key": "k1", `
		}
		body := `{` + keyPart + `"value_schema": ` + q(f.schema) + `, "records": [{` + key + `"value": ` + f.good + `, "partition": 0}, ` +
			`{"value": ` + f.bad + `, "partition": 0}, {"value": ` + f.good + `, "partition": 0}]}`
		resp, out := do(t, "POST", base+"/topics/"+f.v2, body, ct)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.kafka.v2+json" {
			t.Fatalf("%s: %d %s", f.v2, resp.StatusCode, out)
		}
		var ans struct {
			KeySchemaID   *int `json:"key_schema_id"`
			ValueSchemaID *int `json:"value_schema_id"`
			Offsets       []struct {
				Partition *int32  `json:"partition"`
				Offset    *int64  `json:"offset"`
				ErrorCode *int    `json:"error_code"`
				Error     *string `json:"error"`
			} `json:"offsets"`
		}
		if err := json.Unmarshal([]byte(out), &ans); err != nil || ans.ValueSchemaID == nil || len(ans.Offsets) != 3 {
			t.Fatalf("%s: %v %s", f.v2, err, out)
		}
		if (f.keySchema != "") != (ans.KeySchemaID != nil) {
			t.Errorf("%s: key_schema_id in %s", f.v2, out)
		}
		if o := ans.Offsets[1]; o.ErrorCode == nil || *o.ErrorCode != 42203 || o.Offset != nil || !strings.Contains(*o.Error, "records[1].value") {
			t.Errorf("%s: the refused record's entry: %s", f.v2, out)
		}
		for _, i := range []int{0, 2} {
			if o := ans.Offsets[i]; o.ErrorCode != nil || o.Offset == nil || *o.Partition != 0 {
				t.Errorf("%s: record %d: %s", f.v2, i, out)
			}
		}
		ss, err := cl.SchemaByVersion(ctx, f.v2+"-value", 1)
		if err != nil || ss.ID != *ans.ValueSchemaID || ss.Type != f.srType {
			t.Fatalf("%s: %s-value version 1: %+v %v; answered id %d", f.v2, f.v2, ss, err, *ans.ValueSchemaID)
		}
		recs := readTopic(t, env, f.v2, 2)
		for _, r := range recs {
			if got := decodeUser(t, cl, r.Value, *ans.ValueSchemaID); !reflect.DeepEqual(got, ann) {
				t.Errorf("%s: offset %d decodes to %v", f.v2, r.Offset, got)
			}
		}
		if f.keySchema != "" {
			var h sr.ConfluentHeader
			id, rest, err := h.DecodeID(recs[0].Key)
			if err != nil || id != *ans.KeySchemaID {
				t.Errorf("%s: key %x: id %d %v", f.v2, recs[0].Key, id, err)
			}
			if want := map[string]string{"avro": "\x04k1", "jsonschema": `"k1"`}[f.v2]; string(rest) != want {
				t.Errorf("%s: key payload %q, want %q", f.v2, rest, want)
			}
		}

		// The same text again, then the ids: the same schemas.
		body = `{"value_schema": ` + q(f.schema) + `, "records": [{"value": ` + f.good + `}]}`
		resp, out = do(t, "POST", base+"/topics/"+f.v2, body, ct)
		if resp.StatusCode != 200 || !strings.Contains(out, fmt.Sprintf(`"value_schema_id":%d`, *ans.ValueSchemaID)) {
			t.Errorf("%s: the same schema again: %d %s", f.v2, resp.StatusCode, out)
		}
		body = fmt.Sprintf(`{"value_schema_id": %d, "records": [{"value": %s}]}`, *ans.ValueSchemaID, f.good)
		resp, out = do(t, "POST", base+"/topics/"+f.v2, body, ct)
		if resp.StatusCode != 200 || strings.Contains(out, `"error_code":4`) ||
			!strings.Contains(out, fmt.Sprintf(`"value_schema_id":%d`, *ans.ValueSchemaID)) {
			t.Errorf("%s: by id: %d %s", f.v2, resp.StatusCode, out)
		}
		if vs, err := cl.SubjectVersions(ctx, f.v2+"-value"); err != nil || len(vs) != 1 {
			t.Errorf("%s: versions %v %v, want one", f.v2, vs, err)
		}
	}

	// Refusals, as the REST Proxy answers them.
	avro := map[string]string{"Content-Type": "application/vnd.kafka.avro.v2+json"}
	proto, err := cl.SchemaByVersion(ctx, "protobuf-value", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, body   string
		status, code int
		message      string
	}{
		{"no value schema", `{"records": [{"value": {"name": "a", "age": 1}}]}`, 422, 42202, "does not include value schema"},
		{"no key schema", `{"value_schema_id": 1, "records": [{"key": "k", "value": {"name": "a", "age": 1}}]}`, 422, 42201, "does not include key schema"},
		{"a schema that does not compile", `{"value_schema": "{\"type\": \"recrod\"}", "records": [{"value": 1}]}`, 422, 42205, "Invalid schema"},
		{"an unknown id", `{"value_schema_id": 999, "records": [{"value": 1}]}`, 404, 40403, "999"},
		{"an id of another type", fmt.Sprintf(`{"value_schema_id": %d, "records": [{"value": 1}]}`, proto.ID), 422, 42205, "not AVRO"},
		{"an id that is not one", `{"value_schema_id": "one", "records": [{"value": 1}]}`, 422, 422, "value_schema_id"},
	} {
		resp, body := do(t, "POST", base+"/topics/avro", c.body, avro)
		wantError(t, c.what, resp, body, c.status, c.code, c.message)
	}
}

// v3Report is a delivery report with the schema fields of key and value.
type v3Report struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
	Partition *int32 `json:"partition_id"`
	Offset    *int64 `json:"offset"`
	Value     *struct {
		Type          string `json:"type"`
		Subject       string `json:"subject"`
		SchemaID      *int   `json:"schema_id"`
		SchemaVersion *int   `json:"schema_version"`
		Size          int    `json:"size"`
	} `json:"value"`
}

// v3 records in each schema format: a schema given as text is registered
// under the TOPIC_NAME subject and the report names its type, subject,
// id and version; schema_id, schema_version and nothing (the latest) find
// it again; a value the schema refuses is a 400, an unknown id a 404, an
// id of another type a 400; in a stream each record gets its report in
// order; franz-go reads the records back with the registry's schema.
func TestConfluentV3SchemaProduce(t *testing.T) {
	env, base, v3 := startSchemas(t)
	cl := srClient(t, base)
	jsonCT := map[string]string{"Content-Type": "application/json"}
	report := func(what, body string) v3Report {
		t.Helper()
		_, out := do(t, "POST", v3+"/topics/"+strings.SplitN(what, " ", 2)[0]+"/records", body, jsonCT)
		var rep v3Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%s: %v: %s", what, err, out)
		}
		return rep
	}
	for _, f := range schemaFormats {
		q, _ := json.Marshal(f.schema)
		first := report(f.v2+" by text", `{"partition_id": 1, "value": {"type": "`+f.v3+`", "schema": `+string(q)+`, "data": `+f.good+`}}`)
		if first.ErrorCode != 200 || first.Value == nil || first.Value.SchemaID == nil || first.Value.Type != f.v3 ||
			first.Value.Subject != f.v2+"-value" || first.Value.SchemaVersion == nil || *first.Value.SchemaVersion != 1 || first.Value.Size <= 5 {
			t.Fatalf("%s: the report of a value with its schema: %+v %+v", f.v2, first, first.Value)
		}
		id := *first.Value.SchemaID
		for _, c := range []struct{ what, value string }{
			{"by id", fmt.Sprintf(`{"type": "%s", "schema_id": %d, "data": %s}`, f.v3, id, f.good)},
			{"by version", fmt.Sprintf(`{"type": "%s", "schema_version": 1, "data": %s}`, f.v3, f.good)},
			{"by version of a subject", fmt.Sprintf(`{"type": "%s", "subject": "%s-value", "schema_version": 1, "data": %s}`, f.v3, f.v2, f.good)},
			{"the latest", fmt.Sprintf(`{"type": "%s", "data": %s}`, f.v3, f.good)},
			{"no type", fmt.Sprintf(`{"subject_name_strategy": "TOPIC_NAME", "data": %s}`, f.good)},
		} {
			rep := report(f.v2+" "+c.what, `{"partition_id": 1, "value": `+c.value+`}`)
			if rep.ErrorCode != 200 || rep.Value == nil || rep.Value.SchemaID == nil || *rep.Value.SchemaID != id || rep.Value.Type != f.v3 {
				t.Errorf("%s %s: %+v %+v", f.v2, c.what, rep, rep.Value)
			}
		}
		for _, c := range []struct {
			what, value  string
			status, code int
			message      string
		}{
			{"refused data", fmt.Sprintf(`{"type": "%s", "schema_id": %d, "data": %s}`, f.v3, id, f.bad), 400, 400, "Error serializing message"},
			{"an unknown id", fmt.Sprintf(`{"type": "%s", "schema_id": 999, "data": %s}`, f.v3, f.good), 404, 404, "999"},
			{"an unknown subject", fmt.Sprintf(`{"type": "%s", "subject": "nobody", "data": %s}`, f.v3, f.good), 404, 404, "nobody"},
			{"an unknown version", fmt.Sprintf(`{"type": "%s", "schema_version": 7, "data": %s}`, f.v3, f.good), 404, 404, "version 7"},
			{"a schema that does not compile", fmt.Sprintf(`{"type": "%s", "schema": "{{", "data": %s}`, f.v3, f.good), 400, 400, "not a " + f.v3},
			{"two ways", fmt.Sprintf(`{"type": "%s", "schema_id": %d, "schema_version": 1}`, f.v3, id), 400, 400, "one of"},
			{"another strategy", fmt.Sprintf(`{"type": "%s", "subject_name_strategy": "RECORD_NAME"}`, f.v3), 400, 400, "RECORD_NAME"},
		} {
			resp, body := do(t, "POST", v3+"/topics/"+f.v2+"/records", `{"value": `+c.value+`}`, jsonCT)
			wantError(t, f.v2+" "+c.what, resp, body, c.status, c.code, c.message)
		}
		other := "AVRO"
		if f.v3 == "AVRO" {
			other = "PROTOBUF"
		}
		resp, body := do(t, "POST", v3+"/topics/"+f.v2+"/records",
			fmt.Sprintf(`{"value": {"type": "%s", "schema_id": %d, "data": %s}}`, other, id, f.good), jsonCT)
		wantError(t, f.v2+" an id of another type", resp, body, 400, 400, "not "+other)

		// Streamed: reports in order, the refused record's among them.
		req, err := http.NewRequest("POST", v3+"/topics/"+f.v2+"/records", io.NopCloser(strings.NewReader(
			fmt.Sprintf(`{"partition_id":1,"value":{"type":"%[1]s","schema_id":%[2]d,"data":%[3]s}}`+
				`{"partition_id":1,"value":{"type":"%[1]s","schema_id":%[2]d,"data":%[4]s}}`+
				`{"partition_id":1,"value":{"type":"%[1]s","data":%[3]s}}`, f.v3, id, f.good, f.bad))))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		sresp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(sresp.Body)
		var codes []int
		var offsets []int64
		for {
			var rep v3Report
			if dec.Decode(&rep) != nil {
				break
			}
			codes = append(codes, rep.ErrorCode)
			if rep.Offset != nil {
				offsets = append(offsets, *rep.Offset)
			}
		}
		sresp.Body.Close()
		if fmt.Sprint(codes) != "[200 400 200]" || len(offsets) != 2 || offsets[1] != offsets[0]+1 {
			t.Errorf("%s: streamed reports %v, offsets %v", f.v2, codes, offsets)
		}

		// 1 + 5 + 2 records written to partition 1, each in the wire
		// format under id.
		n := 0
		for _, r := range readTopic(t, env, f.v2, 8) {
			if r.Partition != 1 {
				continue
			}
			n++
			if got := decodeUser(t, cl, r.Value, id); !reflect.DeepEqual(got, ann) {
				t.Errorf("%s: offset %d decodes to %v", f.v2, r.Offset, got)
			}
		}
		if n != 8 {
			t.Errorf("%s: %d records in partition 1, want 8", f.v2, n)
		}
	}

	// A key with its own schema, and a value without a schema beside it.
	rep := report("avro key", `{"key": {"type": "AVRO", "schema": "\"string\"", "data": "k"}, "value": {"type": "STRING", "data": "plain"}}`)
	if rep.ErrorCode != 200 || rep.Value == nil || rep.Value.Type != "STRING" || rep.Value.SchemaID != nil {
		t.Fatalf("an AVRO key: %+v", rep)
	}
	if ss, err := cl.SchemaByVersion(context.Background(), "avro-key", 1); err != nil || ss.Schema.Schema != `"string"` {
		t.Errorf("avro-key: %+v %v", ss, err)
	}
}

// A node whose registry is another one (not the built-in) takes schema
// ids and versions, and answers a schema given as text with the schema
// registration error, 40801, in v2 and v3.
func TestConfluentSchemasExternalRegistry(t *testing.T) {
	src, id := testenv.AvroUsers(t, "events-value")
	env := testenv.StartWithSchemasUpstream(t, src, []kfake.Opt{kfake.SeedTopics(3, "events")},
		func(cfg *config.Config) { cfg.HTTP.Listen = "127.0.0.1:0"; cfg.HTTP.Routes = routes }, confluentOn)
	b, _ := env.Node.Binding("http")
	base := "http://" + b.(*httpmap.Server).Addr().String()
	avro := map[string]string{"Content-Type": "application/vnd.kafka.avro.v2+json"}
	resp, body := do(t, "POST", base+"/topics/events", fmt.Sprintf(`{"value_schema_id": %d, "records": [{"value": {"name": "ann", "age": 31}}]}`, id), avro)
	if resp.StatusCode != 200 || !strings.Contains(body, `"error_code":null`) {
		t.Fatalf("by id: %d %s", resp.StatusCode, body)
	}
	if v := readBack(t, env, 1)[0].Value; string(v) != string(testenv.AvroUser(id, "ann", 31)) {
		t.Errorf("written %x", v)
	}
	resp, body = do(t, "POST", base+"/topics/events", `{"value_schema": "\"string\"", "records": [{"value": "x"}]}`, avro)
	wantError(t, "v2 text", resp, body, 408, 40801, "register")
	v3 := base + "/v3/clusters/" + clusterID + "/topics/events/records"
	jsonCT := map[string]string{"Content-Type": "application/json"}
	resp, body = do(t, "POST", v3, `{"value": {"type": "AVRO", "schema": "\"string\"", "data": "x"}}`, jsonCT)
	wantError(t, "v3 text", resp, body, 408, 40801, "register")
	resp, body = do(t, "POST", v3, `{"value": {"type": "AVRO", "schema_version": 1, "data": {"name": "bo", "age": 2}}}`, jsonCT)
	if resp.StatusCode != 200 || !strings.Contains(body, fmt.Sprintf(`"schema_id":%d`, id)) {
		t.Errorf("v3 by version: %d %s", resp.StatusCode, body)
	}
}

// With ACLs on, a schema given as text that is not registered yet is
// registered only for a principal with ALTER on the cluster, as the
// registry's own API asks (40301 otherwise); once registered, a principal
// that may write the topic finds it, in v2 and v3.
func TestConfluentSchemasRegisterACL(t *testing.T) {
	var users []config.User
	for _, name := range []string{"alice", "admin"} {
		cred, err := auth.NewCredential(auth.ScramSHA256, name, name+"-secret", 4096)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, config.User{Name: name, ScramSHA256: cred})
	}
	env := testenv.StartWith(t, []kfake.Opt{kfake.SeedTopics(3, "avro")}, func(cfg *config.Config) {
		cfg.HTTP.Listen = "127.0.0.1:0"
		cfg.HTTP.AllowAnonymous = false
		cfg.Security.Users = users
		cfg.Security.ACLs = config.ACLs{Enabled: true, Rules: []config.ACLRule{
			{Principal: "User:alice", Resource: "topic", Name: "avro", Operations: []string{"write", "describe"}},
			{Principal: "User:admin", Resource: "topic", Name: "avro", Operations: []string{"write", "describe"}},
			{Principal: "User:admin", Resource: "cluster", Operations: []string{"alter", "describe"}},
		}}
	}, confluentOn, registryOn)
	b, _ := env.Node.Binding("http")
	base := "http://" + b.(*httpmap.Server).Addr().String()
	as := func(user, ct string) map[string]string {
		return map[string]string{"Authorization": "Basic " + basicAuth(user, user+"-secret"), "Content-Type": ct}
	}
	v2 := "application/vnd.kafka.avro.v2+json"
	q, _ := json.Marshal(userAvro)
	body := `{"value_schema": ` + string(q) + `, "records": [{"value": {"name": "ann", "age": 31}}]}`
	resp, out := do(t, "POST", base+"/topics/avro", body, as("alice", v2))
	wantError(t, "alice registers", resp, out, 403, 40301, "ALTER on the cluster")
	if resp, out := do(t, "POST", base+"/topics/avro", body, as("admin", v2)); resp.StatusCode != 200 || !strings.Contains(out, `"value_schema_id":1`) {
		t.Fatalf("admin registers: %d %s", resp.StatusCode, out)
	}
	if resp, out := do(t, "POST", base+"/topics/avro", body, as("alice", v2)); resp.StatusCode != 200 || !strings.Contains(out, `"value_schema_id":1`) {
		t.Errorf("alice finds it: %d %s", resp.StatusCode, out)
	}
	v3 := base + "/v3/clusters/" + clusterID + "/topics/avro/records"
	resp, out = do(t, "POST", v3, `{"key": {"type": "AVRO", "schema": "\"string\"", "data": "k"}}`, as("alice", "application/json"))
	wantError(t, "alice registers in v3", resp, out, 403, 40301, "ALTER on the cluster")
}
