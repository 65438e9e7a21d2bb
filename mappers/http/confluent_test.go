package httpmap_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/mesh"
)

// clusterID is the embedded upstream's, which the tests run on.
const clusterID = "meshka-embedded"

func confluentOn(cfg *config.Config) { cfg.HTTP.Confluent = true }

// startConfluent is start with http.confluent on; v3 is the base of the
// cluster's v3 resources.
func startConfluent(t testing.TB, opts ...testenv.Option) (env *testenv.Env, base, v3 string) {
	t.Helper()
	env, base = start(t, append([]testenv.Option{confluentOn}, opts...)...)
	return env, base, base + "/v3/clusters/" + clusterID
}

// decodeJSON decodes body into a generic value, failing the test on error.
func decodeJSON(t testing.TB, body string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return v
}

// field walks a decoded JSON value: keys for objects, indexes for arrays.
func field(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// wantError checks an answer in the REST Proxy's error shape.
func wantError(t testing.TB, what string, resp *http.Response, body string, status, code int, message string) {
	t.Helper()
	var e struct {
		ErrorCode int    `json:"error_code"`
		Message   string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Errorf("%s: %v: %s", what, err, body)
		return
	}
	if resp.StatusCode != status || e.ErrorCode != code || !strings.Contains(e.Message, message) {
		t.Errorf("%s: %d %s; want %d, error_code %d and a message with %q", what, resp.StatusCode, body, status, code, message)
	}
}

// readBack reads n records of events from upstream directly.
func readBack(t testing.TB, env *testenv.Env, n int) []*kgo.Record {
	t.Helper()
	cl := env.DirectClient(t, kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	if len(out) < n {
		t.Fatalf("read %d records of %d", len(out), n)
	}
	return out
}

func headers(r *kgo.Record) map[string]string {
	hs := map[string]string{}
	for _, h := range r.Headers {
		hs[h.Key] = string(h.Value)
	}
	return hs
}

// The cluster is upstream's, in v3's shape, alone in the list; another
// cluster id is 404 wherever it is used.
func TestConfluentV3Cluster(t *testing.T) {
	_, base, v3 := startConfluent(t)
	resp, body := do(t, "GET", base+"/v3/clusters", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	list := decodeJSON(t, body)
	if field(list, "kind") != "KafkaClusterList" || field(list, "metadata", "self") != base+"/v3/clusters" ||
		len(field(list, "data").([]any)) != 1 {
		t.Fatalf("list: %s", body)
	}
	_, body = do(t, "GET", v3, "", nil)
	c := decodeJSON(t, body)
	for path, want := range map[string]any{
		"kind": "KafkaCluster", "cluster_id": clusterID, "metadata.self": v3, "metadata.resource_name": "crn:///kafka=" + clusterID,
		"topics.related": v3 + "/topics", "brokers.related": v3 + "/brokers", "acls.related": v3 + "/acls",
		"partition_reassignments.related": v3 + "/topics/-/partitions/-/reassignment",
	} {
		var keys []any
		for _, k := range strings.Split(path, ".") {
			keys = append(keys, k)
		}
		if got := field(c, keys...); got != want {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
	if got := fmt.Sprint(field(list, "data", 0)); got != fmt.Sprint(c) {
		t.Errorf("the list's cluster %s, the cluster's %s", got, c)
	}
	for _, path := range []string{"", "/topics", "/topics/events", "/topics/events/partitions"} {
		resp, body := do(t, "GET", base+"/v3/clusters/other"+path, "", nil)
		wantError(t, "wrong cluster "+path, resp, body, 404, 404, "Cluster other cannot be found.")
	}
	resp, body = do(t, "POST", base+"/v3/clusters/other/topics/events/records", `{"value":{"type":"STRING","data":"x"}}`,
		map[string]string{"Content-Type": "application/json"})
	wantError(t, "produce to a wrong cluster", resp, body, 404, 404, "Cluster other cannot be found.")
	resp, body = do(t, "GET", base+"/v3/clusters/"+clusterID+"/brokers", "", nil)
	wantError(t, "not served", resp, body, 404, 404, "HTTP 404 Not Found")
	resp, body = do(t, "DELETE", v3+"/topics/events", "", nil)
	wantError(t, "wrong method", resp, body, 405, 405, "DELETE")
	if resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("Allow %q", resp.Header.Get("Allow"))
	}
}

// Topics and partitions in v3's shapes: the list without internal
// topics, each with its partitions and upstream's replication; a topic
// or partition upstream lacks is 404.
func TestConfluentV3Topics(t *testing.T) {
	env, _, v3 := startConfluent(t)
	// A Kafka client's first produce makes __consumer_offsets-like
	// internal topics unlikely here; the list must hold events anyway.
	resp, body := do(t, "GET", v3+"/topics", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	list := decodeJSON(t, body)
	if field(list, "kind") != "KafkaTopicList" || field(list, "metadata", "self") != v3+"/topics" {
		t.Fatalf("list: %s", body)
	}
	var events any
	for _, d := range field(list, "data").([]any) {
		if field(d, "topic_name") == "events" {
			events = d
		}
		if field(d, "is_internal") != false {
			t.Errorf("an internal topic listed: %v", d)
		}
	}
	if events == nil {
		t.Fatalf("no events in %s", body)
	}
	_, body = do(t, "GET", v3+"/topics/events", "", nil)
	topic := decodeJSON(t, body)
	if fmt.Sprint(topic) != fmt.Sprint(events) {
		t.Errorf("listed %v, got %v", events, topic)
	}
	for path, want := range map[string]any{
		"kind": "KafkaTopic", "cluster_id": clusterID, "topic_name": "events", "is_internal": false, "partitions_count": 3.0,
		"metadata.self": v3 + "/topics/events", "metadata.resource_name": "crn:///kafka=" + clusterID + "/topic=events",
		"partitions.related": v3 + "/topics/events/partitions", "configs.related": v3 + "/topics/events/configs",
	} {
		var keys []any
		for _, k := range strings.Split(path, ".") {
			keys = append(keys, k)
		}
		if got := field(topic, keys...); got != want {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
	if rf, _ := field(topic, "replication_factor").(float64); rf < 1 {
		t.Errorf("replication_factor %v", field(topic, "replication_factor"))
	}

	_, body = do(t, "GET", v3+"/topics/events/partitions", "", nil)
	parts := decodeJSON(t, body)
	data, _ := field(parts, "data").([]any)
	if field(parts, "kind") != "KafkaPartitionList" || len(data) != 3 {
		t.Fatalf("partitions: %s", body)
	}
	for i, p := range data {
		self := fmt.Sprintf("%s/topics/events/partitions/%d", v3, i)
		if field(p, "kind") != "KafkaPartition" || field(p, "partition_id") != float64(i) || field(p, "topic_name") != "events" ||
			field(p, "cluster_id") != clusterID || field(p, "metadata", "self") != self ||
			field(p, "metadata", "resource_name") != fmt.Sprintf("crn:///kafka=%s/topic=events/partition=%d", clusterID, i) ||
			field(p, "replicas", "related") != self+"/replicas" {
			t.Errorf("partition %d: %v", i, p)
		}
		if _, ok := p.(map[string]any)["leader"]; ok {
			t.Errorf("partition %d names a leader the mesh API does not know: %v", i, p)
		}
	}
	_, body = do(t, "GET", v3+"/topics/events/partitions/2", "", nil)
	if fmt.Sprint(decodeJSON(t, body)) != fmt.Sprint(data[2]) {
		t.Errorf("partition 2: %s", body)
	}
	resp, body = do(t, "GET", v3+"/topics/events/partitions/3", "", nil)
	wantError(t, "partition 3", resp, body, 404, 40402, "Partition not found")
	resp, body = do(t, "GET", v3+"/topics/nowhere", "", nil)
	wantError(t, "unknown topic", resp, body, 404, 404, "Topic nowhere cannot be found.")
	resp, body = do(t, "GET", v3+"/topics/nowhere/partitions", "", nil)
	wantError(t, "unknown topic's partitions", resp, body, 404, 404, "Topic nowhere cannot be found.")

	// A topic created upstream a moment ago is listed.
	kc := env.DirectClient(t, kgo.AllowAutoTopicCreation())
	if err := kc.ProduceSync(t.Context(), &kgo.Record{Topic: "fresh", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if _, body := do(t, "GET", v3+"/topics", "", nil); !strings.Contains(body, `"topic_name":"fresh"`) {
		t.Errorf("fresh not listed: %s", body)
	}
}

type report struct {
	ErrorCode   int    `json:"error_code"`
	Message     string `json:"message"`
	ClusterID   string `json:"cluster_id"`
	TopicName   string `json:"topic_name"`
	PartitionID *int32 `json:"partition_id"`
	Offset      *int64 `json:"offset"`
	Timestamp   string `json:"timestamp"`
	Key         *struct {
		Type string `json:"type"`
		Size int    `json:"size"`
	} `json:"key"`
	Value *struct {
		Type string `json:"type"`
		Size int    `json:"size"`
	} `json:"value"`
}

func (r report) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// v3 produce, the API's examples: a BINARY key with a JSON value and
// headers to a partition at a time, a STRING value alone, a JSON key with
// a BINARY value; each answered with its delivery report, and a Kafka
// client reads them as sent.
func TestConfluentV3Produce(t *testing.T) {
	env, _, v3 := startConfluent(t)
	jsonCT := map[string]string{"Content-Type": "application/json"}
	examples := []struct {
		body                string
		key, value          string // the report's types; "": none
		keySize, valueSize  int
		partition           int32 // -1: any
		timestamp           string
		wantKey, wantValue  string
		wantNilKey, nilValu bool
		headers             map[string]string
	}{
		{body: `{"partition_id": 1, "headers": [{"name": "Header-1", "value": "SGVhZGVyLTE="}, {"name": "Header-2", "value": "SGVhZGVyLTI="}],
		  "key": {"type": "BINARY", "data": "Zm9vYmFy"}, "value": {"type": "JSON", "data": {"foo": "bar"}}, "timestamp": "2021-02-05T19:14:42Z"}`,
			key: "BINARY", keySize: 6, value: "JSON", valueSize: 13, partition: 1, timestamp: "2021-02-05T19:14:42Z",
			wantKey: "foobar", wantValue: `{"foo":"bar"}`, headers: map[string]string{"Header-1": "Header-1", "Header-2": "Header-2"}},
		{body: `{"value": {"type": "STRING", "data": "My message"}}`, value: "STRING", valueSize: 10, partition: -1,
			wantValue: "My message", wantNilKey: true, headers: map[string]string{}},
		{body: `{"key": {"type": "JSON", "data": [1, {"a": null}]}, "value": {"type": "BINARY", "data": "AAEC/w=="}}`,
			key: "JSON", keySize: 14, value: "BINARY", valueSize: 4, partition: -1,
			wantKey: `[1,{"a":null}]`, wantValue: "\x00\x01\x02\xff", headers: map[string]string{}},
		{body: `{"key": {"type": "STRING", "data": "gone"}, "value": {"type": "BINARY", "data": null}}`,
			key: "STRING", keySize: 4, value: "BINARY", valueSize: -1, partition: -1,
			wantKey: "gone", nilValu: true, headers: map[string]string{}},
	}
	type where struct {
		p int32
		o int64
	}
	reports := map[where]int{}
	for i, ex := range examples {
		resp, body := do(t, "POST", v3+"/topics/events/records", ex.body, jsonCT)
		var rep report
		if err := json.Unmarshal([]byte(body), &rep); err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("example %d: %d %s (%v)", i, resp.StatusCode, body, err)
		}
		if rep.ErrorCode != 200 || rep.ClusterID != clusterID || rep.TopicName != "events" || rep.PartitionID == nil || rep.Offset == nil ||
			ex.partition >= 0 && *rep.PartitionID != ex.partition || ex.timestamp != "" && rep.Timestamp != ex.timestamp || rep.Message != "" {
			t.Fatalf("example %d: %s", i, body)
		}
		if _, err := time.Parse(time.RFC3339Nano, rep.Timestamp); err != nil {
			t.Errorf("example %d: timestamp %q: %v", i, rep.Timestamp, err)
		}
		if (ex.key == "") != (rep.Key == nil) || rep.Key != nil && (rep.Key.Type != ex.key || rep.Key.Size != ex.keySize) ||
			rep.Value == nil || rep.Value.Type != ex.value || rep.Value.Size != ex.valueSize {
			t.Errorf("example %d: key and value %s", i, body)
		}
		reports[where{*rep.PartitionID, *rep.Offset}] = i
	}
	for _, r := range readBack(t, env, len(examples)) {
		i, ok := reports[where{r.Partition, r.Offset}]
		if !ok {
			t.Errorf("a record no report named: %+v", r)
			continue
		}
		ex := examples[i]
		if string(r.Key) != ex.wantKey || (r.Key == nil) != ex.wantNilKey || string(r.Value) != ex.wantValue || (r.Value == nil) != ex.nilValu {
			t.Errorf("example %d read back as key %q value %q", i, r.Key, r.Value)
		}
		if got := headers(r); fmt.Sprint(got) != fmt.Sprint(ex.headers) {
			t.Errorf("example %d: headers %v, want %v", i, got, ex.headers)
		}
		if ex.timestamp != "" && r.Timestamp.UTC().Format(time.RFC3339) != ex.timestamp {
			t.Errorf("example %d: timestamp %v", i, r.Timestamp)
		}
	}
}

// Streaming: a chunked body of records gets one report per record, in
// order, each written as its record is delivered while the body goes on;
// a record that cannot be produced gets its error and the others go.
func TestConfluentV3Stream(t *testing.T) {
	env, _, v3 := startConfluent(t)
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(t.Context(), "POST", v3+"/topics/events/records", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			pr.CloseWithError(err)
		}
		done <- resp
	}()
	// The first record goes before the answer's headers can be awaited:
	// the server answers 200 once the stream is open.
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(pw, s); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"partition_id":0,"key":{"type":"STRING","data":"k0"},"value":{"type":"STRING","data":"v0"}}`)
	var resp *http.Response
	select {
	case resp = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("no answer to a stream")
	}
	if resp == nil {
		t.FailNow()
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	dec := json.NewDecoder(resp.Body)
	next := func() report {
		t.Helper()
		var rep report
		if err := dec.Decode(&rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	var reps []report
	reps = append(reps, next()) // before the second record is sent
	send("\n  {\"partition_id\":0,\"value\":{\"type\":\"JSON\",\"data\":{\"n\":1}}}")
	reps = append(reps, next())
	send(`{"value":{"type":"AVRO","data":"x"}}{"partition_id":0,"headers":[{"name":"h","value":"dg=="}],"value":{"type":"BINARY","data":"djI="}}`)
	bad := next()
	reps = append(reps, next())
	pw.Close()
	if err := dec.Decode(new(report)); err != io.EOF {
		t.Errorf("after the last report: %v", err)
	}
	if bad.ErrorCode != 400 || !strings.Contains(bad.Message, "schema registry") || bad.Offset != nil {
		t.Errorf("the AVRO record's report: %v", bad)
	}
	for i, rep := range reps {
		if rep.ErrorCode != 200 || *rep.PartitionID != 0 || i > 0 && *rep.Offset != *reps[i-1].Offset+1 {
			t.Fatalf("reports out of order or failed: %v", reps)
		}
	}
	got := readBack(t, env, 3)
	want := []string{"v0", `{"n":1}`, "v2"}
	for i, r := range got {
		if string(r.Value) != want[i] || r.Offset != *reps[i].Offset {
			t.Errorf("record %d: %q at %d", i, r.Value, r.Offset)
		}
	}
	if string(got[0].Key) != "k0" || headers(got[2])["h"] != "v" {
		t.Errorf("key %q, headers %v", got[0].Key, headers(got[2]))
	}

	// A stream the client keeps open ends when meshka stops: the node
	// drains in time.
	pr, pw = io.Pipe()
	defer pw.Close()
	req, _ = http.NewRequestWithContext(t.Context(), "POST", v3+"/topics/events/records", pr)
	go io.WriteString(pw, `{"value":{"type":"STRING","data":"open"}}`)
	open, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Body.Close()
	dec = json.NewDecoder(open.Body)
	if rep := next(); rep.ErrorCode != 200 {
		t.Fatalf("open stream: %v", rep)
	}
	began := time.Now()
	env.RestartNode(t)
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("the node took %v to stop with a stream open", d)
	}
	if err := dec.Decode(new(report)); err == nil {
		t.Error("the open stream goes on after the node stopped")
	}
}

// A stream of many records, sent as fast as they go and read
// meanwhile, gets every report in order: the bounds on records in flight
// hold the client back without losing or reordering any.
func TestConfluentV3StreamMany(t *testing.T) {
	_, _, v3 := startConfluent(t)
	const n = 3000
	pr, pw := io.Pipe()
	go func() {
		for i := range n {
			if _, err := fmt.Fprintf(pw, `{"partition_id":0,"value":{"type":"STRING","data":"%d"}}`+"\n", i); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", v3+"/topics/events/records", pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	var last int64 = -1
	for i := range n {
		var rep report
		if err := dec.Decode(&rep); err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
		if rep.ErrorCode != 200 || last >= 0 && *rep.Offset != last+1 {
			t.Fatalf("report %d: %v after offset %d", i, rep, last)
		}
		last = *rep.Offset
	}
	if err := dec.Decode(new(report)); err != io.EOF {
		t.Errorf("after %d reports: %v", n, err)
	}
}

// v3's refusals, in its error shape: malformed JSON with the decoder's
// error, unknown fields, schema types, bad base64, a topic or partition
// upstream lacks, a body too large, empty or not JSON.
func TestConfluentV3Refusals(t *testing.T) {
	env, _, v3 := startConfluent(t)
	jsonCT := map[string]string{"Content-Type": "application/json"}
	for _, c := range []struct {
		what, path, body string
		status, code     int
		message          string
	}{
		{"malformed JSON", "events", `{"value": {"type": "JSON", "data": }}`, 400, 400, "invalid character '}'"},
		{"not an object", "events", `["value"]`, 400, 400, "want a JSON object"},
		{"cut short", "events", `{"value": {"type": "JSON"`, 400, 400, "unexpected EOF"},
		{"unknown field", "events", `{"partition": 1}`, 400, 400, `unknown field "partition"`},
		{"wrong type", "events", `{"partition_id": "A"}`, 400, 400, "partition_id"},
		{"AVRO", "events", `{"value": {"type": "AVRO", "data": "x"}}`, 400, 400, "schema registry"},
		{"PROTOBUF key", "events", `{"key": {"type": "PROTOBUF", "data": "x"}}`, 400, 400, "schema registry"},
		{"a schema id", "events", `{"value": {"schema_id": 1, "data": 1000}}`, 400, 400, "schema_id"},
		{"no type", "events", `{"value": {"data": 1000}}`, 400, 400, "no type"},
		{"unknown type", "events", `{"value": {"type": "XML", "data": "x"}}`, 400, 400, `unknown type "XML"`},
		{"bad base64", "events", `{"value": {"type": "BINARY", "data": "fooba"}}`, 400, 400, "not a valid base64"},
		{"BINARY not a string", "events", `{"value": {"type": "BINARY", "data": 1}}`, 400, 400, "data=1 is not a base64 string"},
		{"STRING not a string", "events", `{"value": {"type": "STRING", "data": {}}}`, 400, 400, "is not a string"},
		{"header without a name", "events", `{"headers": [{"value": "eA=="}]}`, 400, 400, "headers[0]: no name"},
		{"bad timestamp", "events", `{"timestamp": "yesterday"}`, 400, 400, "RFC 3339"},
		{"unknown topic", "nowhere", `{"value": {"type": "STRING", "data": "x"}}`, 404, 40403, "This server does not host this topic-partition."},
		{"unknown partition", "events", `{"partition_id": 9, "value": {"type": "STRING", "data": "x"}}`, 404, 40402, "Partition not found"},
		{"negative partition", "events", `{"partition_id": -2}`, 404, 40402, "Partition not found"},
		{"empty", "events", "  ", 422, 422, "Request body is empty"},
		{"too large", "events", `{"value": {"type": "STRING", "data": "` + strings.Repeat("a", 2000) + `"}}`, 413, 413, "http.max_body_bytes"},
	} {
		resp, body := do(t, "POST", v3+"/topics/"+c.path+"/records", c.body, jsonCT)
		wantError(t, c.what, resp, body, c.status, c.code, c.message)
	}
	resp, body := do(t, "POST", v3+"/topics/events/records", `{}`, map[string]string{"Content-Type": "text/plain"})
	wantError(t, "text/plain", resp, body, 415, 415, "Unsupported Media Type")

	// A body with a record that does not parse produces none of them.
	ends := func() string {
		t.Helper()
		o, err := env.Node.Mesh().Offsets(t.Context(), "events", mesh.Latest())
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(o)
	}
	before := ends()
	resp, body = do(t, "POST", v3+"/topics/events/records",
		`{"partition_id":0,"value":{"type":"STRING","data":"a"}} {"value": {"type": "JSON", "data": ]}}`, jsonCT)
	wantError(t, "one record of two malformed", resp, body, 400, 400, "invalid character ']'")
	if after := ends(); after != before {
		t.Errorf("a malformed body produced: ends %s, then %s", before, after)
	}

	// Several records in one body of known length: one report each, the
	// failed one's error among them, 200.
	_, body = do(t, "POST", v3+"/topics/events/records",
		`{"value":{"type":"STRING","data":"a"}} {"value":{"type":"AVRO","data":"b"}} {"value":{"type":"STRING","data":"c"}}`, jsonCT)
	dec := json.NewDecoder(strings.NewReader(body))
	var codes []int
	for {
		var rep report
		if err := dec.Decode(&rep); err != nil {
			break
		}
		codes = append(codes, rep.ErrorCode)
	}
	if fmt.Sprint(codes) != "[200 400 200]" {
		t.Errorf("three records, reports %v: %s", codes, body)
	}
}

// v2 produce, json and binary, to a topic and to a partition: offsets in
// order with null errors and schema ids; a Kafka client reads the JSON
// text of json keys and values, and binary's bytes.
func TestConfluentV2Produce(t *testing.T) {
	env, base, _ := startConfluent(t)
	resp, body := do(t, "POST", base+"/topics/events",
		`{"records": [{"key": "k1", "value": {"foo": "bar"}}, {"value": [1, 2], "partition": 2}, {"key": null, "value": null}]}`,
		map[string]string{"Content-Type": "application/vnd.kafka.json.v2+json"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.kafka.v2+json" {
		t.Fatalf("json: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	for _, s := range []string{`"key_schema_id":null`, `"value_schema_id":null`, `"error_code":null`, `"error":null`, `"partition":2`} {
		if !strings.Contains(body, s) {
			t.Errorf("json: no %s in %s", s, body)
		}
	}
	var out struct {
		Offsets []struct {
			Partition *int32
			Offset    *int64
			ErrorCode *int `json:"error_code"`
		}
	}
	json.Unmarshal([]byte(body), &out)
	resp, body = do(t, "POST", base+"/topics/events/partitions/1", `{"records": [{"key": "a2V5", "value": "dmFsdWU="}, {"value": "AP8="}]}`,
		map[string]string{"Content-Type": "application/vnd.kafka.binary.v2+json"})
	if resp.StatusCode != 200 {
		t.Fatalf("binary: %d %s", resp.StatusCode, body)
	}
	var bin struct {
		Offsets []struct {
			Partition *int32
			Offset    *int64
		}
	}
	json.Unmarshal([]byte(body), &bin)
	if len(out.Offsets) != 3 || len(bin.Offsets) != 2 || *bin.Offsets[0].Partition != 1 || *bin.Offsets[1].Partition != 1 ||
		*bin.Offsets[1].Offset != *bin.Offsets[0].Offset+1 {
		t.Fatalf("offsets: %+v %+v", out, bin)
	}
	type where struct {
		p int32
		o int64
	}
	want := map[where][2]string{}
	wantJSON := [][2]string{{`"k1"`, `{"foo":"bar"}`}, {"", "[1,2]"}, {"", ""}}
	for i, o := range out.Offsets {
		if o.ErrorCode != nil || o.Partition == nil {
			t.Fatalf("json offset %d: %+v", i, o)
		}
		want[where{*o.Partition, *o.Offset}] = wantJSON[i]
	}
	want[where{1, *bin.Offsets[0].Offset}] = [2]string{"key", "value"}
	want[where{1, *bin.Offsets[1].Offset}] = [2]string{"", "\x00\xff"}
	for _, r := range readBack(t, env, 5) {
		w, ok := want[where{r.Partition, r.Offset}]
		if !ok || string(r.Key) != w[0] || string(r.Value) != w[1] {
			t.Errorf("record %d/%d: key %q value %q, want %q", r.Partition, r.Offset, r.Key, r.Value, w)
		}
	}
}

// v2's topics and refusals: names, a topic's partitions, 404 for a topic
// upstream lacks, 415 for the schema formats (without a registry) and other media types, 400
// and 422 for bad bodies, 501 for manual assignment of consumer instances.
func TestConfluentV2Topics(t *testing.T) {
	_, base, _ := startConfluent(t)
	resp, body := do(t, "GET", base+"/topics", "", nil)
	var names []string
	if err := json.Unmarshal([]byte(body), &names); err != nil || resp.StatusCode != 200 || !strings.Contains(fmt.Sprint(names), "events") ||
		resp.Header.Get("Content-Type") != "application/vnd.kafka.v2+json" {
		t.Fatalf("topics: %d %s", resp.StatusCode, body)
	}
	if _, body := do(t, "GET", base+"/topics/events", "", nil); strings.TrimSpace(body) !=
		`{"name":"events","partitions":[{"partition":0},{"partition":1},{"partition":2}]}` {
		t.Errorf("events: %s", body)
	}
	resp, body = do(t, "GET", base+"/topics/nowhere", "", nil)
	wantError(t, "unknown topic", resp, body, 404, 40401, "Topic not found")
	v2 := func(format string) map[string]string {
		return map[string]string{"Content-Type": "application/vnd.kafka." + format + ".v2+json"}
	}
	records := `{"records": [{"value": "x"}]}`
	for _, c := range []struct {
		what, path, body string
		header           map[string]string
		status, code     int
		message          string
	}{
		{"avro", "/topics/events", records, v2("avro"), 415, 415, "the avro embedded format needs a schema registry"},
		{"jsonschema", "/topics/events", records, v2("jsonschema"), 415, 415, "jsonschema"},
		{"protobuf", "/topics/events", records, v2("protobuf"), 415, 415, "protobuf"},
		{"application/json", "/topics/events", records, map[string]string{"Content-Type": "application/json"}, 415, 415, "application/json"},
		{"unknown topic", "/topics/nowhere", records, v2("json"), 404, 40401, "Topic not found"},
		{"unknown partition", "/topics/events/partitions/3", records, v2("json"), 404, 40402, "Partition not found"},
		{"malformed", "/topics/events", `{"records": [`, v2("json"), 400, 400, "Error processing JSON"},
		{"unknown field", "/topics/events", `{"records": [{"val": 1}]}`, v2("json"), 400, 400, `unknown field "val"`},
		{"no records", "/topics/events", `{"records": []}`, v2("json"), 422, 422, "records"},
		{"bad base64", "/topics/events", `{"records": [{"value": "fooba"}]}`, v2("binary"), 400, 400, "records[0].value"},
		{"too large", "/topics/events", `{"records": [{"value": "` + strings.Repeat("a", 2000) + `"}]}`, v2("json"), 413, 413, "max_body_bytes"},
		{"consumer instance too large", "/consumers/group", `{"name": "` + strings.Repeat("a", 2000) + `"}`, v2("json"), 413, 413, "max_body_bytes"},
		{"assigning an instance", "/consumers/group/instances/x/assignments", `{"partitions": []}`, v2("json"), 501, 501, "manual assignment"},
	} {
		resp, body := do(t, "POST", base+c.path, c.body, c.header)
		wantError(t, c.what, resp, body, c.status, c.code, c.message)
	}
	// A record's partition upstream lacks is that record's error; the
	// others go.
	_, body = do(t, "POST", base+"/topics/events", `{"records": [{"value": 1, "partition": 7}, {"value": 2}]}`, v2("json"))
	var out struct {
		Offsets []struct {
			Partition *int32
			ErrorCode *int `json:"error_code"`
			Error     *string
		}
	}
	if json.Unmarshal([]byte(body), &out); len(out.Offsets) != 2 || out.Offsets[0].ErrorCode == nil || *out.Offsets[0].ErrorCode != 40402 ||
		out.Offsets[0].Partition != nil || out.Offsets[1].ErrorCode != nil || out.Offsets[1].Partition == nil {
		t.Errorf("one bad partition: %s", body)
	}
	resp, _ = do(t, "PUT", base+"/topics/events", "", nil)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("PUT: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// A configured route of the same method and path comes first; other
// methods and paths go on to the Confluent API. Off, there is none.
func TestConfluentRoutesFirst(t *testing.T) {
	env, base, _ := startConfluent(t, func(cfg *config.Config) {
		cfg.HTTP.Routes = append(cfg.HTTP.Routes, config.HTTPRoute{Method: "GET", Path: "/topics/{name}", Topic: "events", Capability: "fetch"})
	})
	kc := env.Client(t)
	if err := kc.ProduceSync(t.Context(), &kgo.Record{Topic: "events", Value: []byte(`{"n":1}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if _, body := do(t, "GET", base+"/topics/events", "", nil); strings.TrimSpace(body) != `[{"n":1}]` {
		t.Errorf("the route's fetch: %s", body)
	}
	if resp, body := do(t, "GET", base+"/topics", "", nil); resp.StatusCode != 200 || !strings.Contains(body, `"events"`) {
		t.Errorf("the Confluent list: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, "POST", base+"/topics/events", `{"records":[{"value":2}]}`,
		map[string]string{"Content-Type": "application/vnd.kafka.json.v2+json"}); resp.StatusCode != 200 {
		t.Errorf("the Confluent produce: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, "GET", base+"/nowhere", "", nil); resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("neither: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// With http.confluent off, its paths are no route's.
func TestConfluentOff(t *testing.T) {
	_, off := start(t)
	if resp, _ := do(t, "GET", off+"/v3/clusters", "", nil); resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("http.confluent off: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// testdata/confluent_curl.sh drives the API with curl, as docs/http.md
// shows it, and a Kafka client reads what it produced.
func TestConfluentCurl(t *testing.T) {
	for _, tool := range []string{"curl", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not on PATH, and CI is expected to install it: %v", tool, err)
			}
			t.Skipf("%s is not on PATH: %v", tool, err)
		}
	}
	env, base, _ := startConfluent(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("testdata", "confluent_curl.sh"))
	cmd.Env = append(os.Environ(), "BASE="+base, "CLUSTER="+clusterID)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", out)
	values := map[string]bool{}
	for _, r := range readBack(t, env, 7) {
		values[string(r.Value)] = true
	}
	for _, v := range []string{`{"name":"testUser"}`, "My message", "one", "two", "three", `{"count":1}`, "hello"} {
		if !values[v] {
			t.Errorf("%q not read back; read %v", v, values)
		}
	}
}
