package httpmap_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// v2 consumers in each schema format read records back as JSON, with
// each key's and value's schema id; a value that does not decode (not in
// the wire format) comes as base64, as the binary format gives it,
// without a schema id, and the request does not fail.
func TestV2SchemaConsumer(t *testing.T) {
	env, base, _ := startSchemas(t)
	kc := env.Client(t)
	for _, f := range schemaFormats {
		q, _ := json.Marshal(f.schema)
		resp, out := do(t, "POST", base+"/topics/"+f.v2, `{"value_schema": `+string(q)+`, "records": [{"value": `+f.good+`, "partition": 0}]}`,
			map[string]string{"Content-Type": "application/vnd.kafka." + f.v2 + ".v2+json"})
		var ans struct {
			ValueSchemaID int `json:"value_schema_id"`
		}
		if resp.StatusCode != 200 || json.Unmarshal([]byte(out), &ans) != nil {
			t.Fatalf("%s: %d %s", f.v2, resp.StatusCode, out)
		}
		if err := kc.ProduceSync(context.Background(), &kgo.Record{Topic: f.v2, Value: []byte("not in the wire format")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		c := createConsumer(t, base, "g-"+f.v2, `{"format": "`+f.v2+`", "auto.offset.reset": "earliest"}`)
		c.format = f.v2
		c.subscribe(base, f.v2)
		var got []map[string]json.RawMessage
		deadline := time.Now().Add(30 * time.Second)
		for len(got) < 2 && time.Now().Before(deadline) {
			resp, body := do(t, "GET", c.instance(base)+"/records?timeout=500", "",
				map[string]string{"Accept": "application/vnd.kafka." + f.v2 + ".v2+json"})
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.kafka."+f.v2+".v2+json" {
				t.Fatalf("%s: records: %d %s %s", f.v2, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			var recs []map[string]json.RawMessage
			if err := json.Unmarshal([]byte(body), &recs); err != nil {
				t.Fatal(err)
			}
			got = append(got, recs...)
		}
		if len(got) != 2 {
			t.Fatalf("%s: %d records", f.v2, len(got))
		}
		if got[0]["value_schema_id"] == nil {
			got[0], got[1] = got[1], got[0] // partitions in any order
		}
		var user map[string]any
		json.Unmarshal(got[0]["value"], &user)
		if !reflect.DeepEqual(user, ann) || string(got[0]["value_schema_id"]) != fmt.Sprint(ans.ValueSchemaID) || string(got[0]["key"]) != "null" {
			t.Errorf("%s: the first record %s", f.v2, mustJSON(got[0]))
		}
		var raw string
		json.Unmarshal(got[1]["value"], &raw)
		if dec, _ := base64.StdEncoding.DecodeString(raw); string(dec) != "not in the wire format" || got[1]["value_schema_id"] != nil {
			t.Errorf("%s: the record not in the wire format %s", f.v2, mustJSON(got[1]))
		}
		resp, body := do(t, "GET", c.instance(base)+"/records", "", map[string]string{"Accept": "application/vnd.kafka.json.v2+json"})
		wantError(t, f.v2+": records as json", resp, body, 406, 40601, "does not match")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// testdata/confluent_schemas_curl.sh drives the schema formats with curl,
// as docs/http.md shows them: v3 and v2 produce in each format, refusals,
// and a v2 avro consumer reading the records back as JSON.
func TestConfluentSchemasCurl(t *testing.T) {
	for _, tool := range []string{"curl", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not on PATH, and CI is expected to install it: %v", tool, err)
			}
			t.Skipf("%s is not on PATH: %v", tool, err)
		}
	}
	_, base, _ := startSchemas(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("testdata", "confluent_schemas_curl.sh"))
	cmd.Env = append(os.Environ(), "BASE="+base, "CLUSTER="+clusterID)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// The schema formats across nodes: a schema given as text on each node is
// registered once, through the registry's one writer wherever it runs,
// and every node answers the same id; an avro consumer instance created
// on one node and read through another decodes what they all wrote.
func TestRemotingSchemaFormatsAcrossNodes(t *testing.T) {
	_, bases := startHTTPCluster(t, confluentOn, registryOn)
	q, _ := json.Marshal(userAvro)
	ids := map[string]bool{}
	for i, base := range bases {
		resp, out := do(t, "POST", base+"/topics/events",
			fmt.Sprintf(`{"value_schema": %s, "records": [{"value": {"name": "n%d", "age": %d}}]}`, q, i, i),
			map[string]string{"Content-Type": "application/vnd.kafka.avro.v2+json"})
		var ans struct {
			ValueSchemaID int `json:"value_schema_id"`
		}
		if resp.StatusCode != 200 || json.Unmarshal([]byte(out), &ans) != nil || strings.Contains(out, `"error_code":4`) {
			t.Fatalf("node %d: %d %s", i, resp.StatusCode, out)
		}
		ids[fmt.Sprint(ans.ValueSchemaID)] = true
	}
	if len(ids) != 1 {
		t.Fatalf("the nodes answered ids %v, want one", ids)
	}
	if vs, err := srClient(t, bases[2]).SubjectVersions(context.Background(), "events-value"); err != nil || len(vs) != 1 {
		t.Errorf("events-value versions %v %v, want one", vs, err)
	}
	c := createConsumer(t, bases[0], "g-avro", `{"name": "r", "format": "avro", "auto.offset.reset": "earliest"}`)
	c.format = "avro"
	c.subscribe(bases[1], "events")
	got := map[string]bool{}
	for _, r := range c.readAll(3, bases[1], bases[2]) {
		got[string(r.Value)] = true
	}
	for i := range bases {
		if v := fmt.Sprintf(`{"name":"n%d","age":%d}`, i, i); !got[v] {
			t.Errorf("%s not read back: %v", v, got)
		}
	}
}
