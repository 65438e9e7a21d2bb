package httpmap_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/race"
	"github.com/meshka/meshka/internal/testenv"
	httpmap "github.com/meshka/meshka/mappers/http"
)

// v2Record is a record as GET …/records answers it.
type v2Record struct {
	Topic     string          `json:"topic"`
	Key       json.RawMessage `json:"key"`
	Value     json.RawMessage `json:"value"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
}

// consumerClient drives one v2 consumer instance through a base URL
// (any node's listener).
type consumerClient struct {
	t      testing.TB
	base   string // http://host:port
	group  string
	name   string
	format string
}

func (c *consumerClient) instance(base string) string {
	return base + "/consumers/" + c.group + "/instances/" + c.name
}

func v2ct() map[string]string {
	return map[string]string{"Content-Type": "application/vnd.kafka.v2+json"}
}

// create makes the instance with cfg (JSON) and checks the answer.
func createConsumer(t testing.TB, base, group, cfg string) *consumerClient {
	t.Helper()
	resp, body := do(t, "POST", base+"/consumers/"+group, cfg, v2ct())
	if resp.StatusCode != 200 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var out struct {
		InstanceID string `json:"instance_id"`
		BaseURI    string `json:"base_uri"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if want := base + "/consumers/" + group + "/instances/" + out.InstanceID; out.BaseURI != want {
		t.Fatalf("base_uri %q, want %q", out.BaseURI, want)
	}
	c := &consumerClient{t: t, base: base, group: group, name: out.InstanceID, format: "binary"}
	if strings.Contains(cfg, `"json"`) {
		c.format = "json"
	}
	return c
}

func (c *consumerClient) subscribe(base string, topics ...string) {
	c.t.Helper()
	b, _ := json.Marshal(map[string]any{"topics": topics})
	resp, body := do(c.t, "POST", c.instance(base)+"/subscription", string(b), v2ct())
	if resp.StatusCode != 204 {
		c.t.Fatalf("subscribe: %d %s", resp.StatusCode, body)
	}
}

// records is one GET records on base.
func (c *consumerClient) records(base string) []v2Record {
	c.t.Helper()
	resp, body := do(c.t, "GET", c.instance(base)+"/records?timeout=500",
		"", map[string]string{"Accept": "application/vnd.kafka." + c.format + ".v2+json"})
	if resp.StatusCode != 200 {
		c.t.Fatalf("records: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.kafka."+c.format+".v2+json" {
		c.t.Fatalf("records' content type %q", ct)
	}
	var out []v2Record
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		c.t.Fatalf("%v: %s", err, body)
	}
	return out
}

// readAll reads until n records have come, through the bases in turn,
// and fails on a record that comes twice.
func (c *consumerClient) readAll(n int, bases ...string) []v2Record {
	c.t.Helper()
	var got []v2Record
	seen := map[[2]int64]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; len(got) < n; i++ {
		if time.Now().After(deadline) {
			c.t.Fatalf("%d of %d records", len(got), n)
		}
		for _, r := range c.records(bases[i%len(bases)]) {
			k := [2]int64{int64(r.Partition), r.Offset}
			if seen[k] {
				c.t.Fatalf("partition %d offset %d came twice", r.Partition, r.Offset)
			}
			seen[k] = true
			got = append(got, r)
		}
	}
	return got
}

func produceN(t testing.TB, cl *kgo.Client, topic string, n int, value func(i int) string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(value(i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// A v2 consumer instance as the REST Proxy's documentation drives it:
// create (json), subscribe, read what a Kafka client wrote, commit, see
// the commit upstream, delete. Errors as the REST Proxy answers them.
func TestV2Consumer(t *testing.T) {
	env, base, _ := startConfluent(t)
	cl := env.Client(t)
	c := createConsumer(t, base, "cg1", `{"name":"my_consumer","format":"json","auto.offset.reset":"earliest","auto.commit.enable":"false"}`)
	if c.name != "my_consumer" {
		t.Fatalf("instance %q", c.name)
	}
	resp, body := do(t, "POST", base+"/consumers/cg1", `{"name":"my_consumer","format":"json"}`, v2ct())
	wantError(t, "the same name again", resp, body, 409, 40902, "already exists")
	resp, body = do(t, "GET", c.instance(base)+"/records", "", map[string]string{"Accept": "application/vnd.kafka.json.v2+json"})
	wantError(t, "records before subscribing", resp, body, 409, 40903, "not subscribed")

	c.subscribe(base, "events")
	resp, body = do(t, "GET", c.instance(base)+"/subscription", "", nil)
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"topics":["events"]}` {
		t.Fatalf("subscription: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, "GET", c.instance(base)+"/records", "", map[string]string{"Accept": "application/vnd.kafka.binary.v2+json"})
	wantError(t, "records in another format", resp, body, 406, 40601, "does not match")

	produceN(t, cl, "events", 30, func(i int) string {
		if i%2 == 0 {
			return fmt.Sprintf(`{"n":%d}`, i)
		}
		return fmt.Sprintf("plain %d", i) // not JSON: comes as a string
	})
	got := c.readAll(30, base)
	last := map[int32]int64{}
	for _, r := range got {
		var key string
		json.Unmarshal(r.Key, &key)
		var n int
		fmt.Sscanf(key, "k%d", &n)
		want := fmt.Sprintf(`{"n":%d}`, n)
		if n%2 == 1 {
			want = fmt.Sprintf(`"plain %d"`, n)
		}
		if r.Topic != "events" || string(r.Value) != want {
			t.Fatalf("record %+v: value %s, want %s", r, r.Value, want)
		}
		if o, ok := last[r.Partition]; ok && r.Offset <= o {
			t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, o)
		}
		last[r.Partition] = r.Offset
	}
	resp, body = do(t, "GET", c.instance(base)+"/assignments", "", nil)
	if resp.StatusCode != 200 || strings.Count(body, `"topic":"events"`) != 3 {
		t.Fatalf("assignments: %d %s", resp.StatusCode, body)
	}

	// Nothing is committed before POST offsets (auto commit is off).
	adm := kadm.NewClient(env.DirectClient(t))
	ctx := context.Background()
	offs, err := adm.FetchOffsets(ctx, "cg1")
	if err != nil {
		t.Fatal(err)
	}
	for p := range last {
		if o, ok := offs.Lookup("events", p); ok && o.At > 0 {
			t.Fatalf("partition %d committed at %d before any commit", p, o.At)
		}
	}
	resp, body = do(t, "POST", c.instance(base)+"/offsets", "", v2ct())
	if resp.StatusCode != 200 {
		t.Fatalf("commit: %d %s", resp.StatusCode, body)
	}
	offs, err = adm.FetchOffsets(ctx, "cg1")
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for p, o := range last {
		if c, ok := offs.Lookup("events", p); !ok || c.At != o+1 {
			t.Fatalf("partition %d committed at %+v, want %d", p, c, o+1)
		}
		parts = append(parts, fmt.Sprintf(`{"topic":"events","partition":%d}`, p))
	}
	resp, body = do(t, "GET", c.instance(base)+"/offsets", `{"partitions":[`+strings.Join(parts, ",")+`]}`, v2ct())
	var committed struct {
		Offsets []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Offset    int64  `json:"offset"`
		} `json:"offsets"`
	}
	if err := json.Unmarshal([]byte(body), &committed); err != nil || resp.StatusCode != 200 || len(committed.Offsets) != len(last) {
		t.Fatalf("committed offsets: %d %s", resp.StatusCode, body)
	}
	for _, o := range committed.Offsets {
		if o.Offset != last[o.Partition]+1 {
			t.Fatalf("committed: %s", body)
		}
	}

	resp, body = do(t, "POST", c.instance(base)+"/positions/beginning", `{"partitions":[]}`, v2ct())
	wantError(t, "seeking", resp, body, 501, 501, "seeking")
	resp, body = do(t, "DELETE", c.instance(base), "", v2ct())
	if resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, "GET", c.instance(base)+"/records", "", nil)
	wantError(t, "records after delete", resp, body, 404, 40403, "Consumer instance not found")

	for _, bad := range []struct{ cfg, message string }{
		{`{"format":"avro"}`, "schema registry"},
		{`{"format":"xml"}`, "format"},
		{`{"auto.offset.reset":"sometime"}`, "auto.offset.reset"},
		{`{"auto.commit.enable":"maybe"}`, "auto.commit.enable"},
		{`{"name":"a/b"}`, "name"},
	} {
		resp, body := do(t, "POST", base+"/consumers/cg1", bad.cfg, v2ct())
		wantError(t, bad.cfg, resp, body, 422, 42204, bad.message)
	}
	resp, body = do(t, "POST", base+"/consumers/cg1", `{"name":`, v2ct())
	wantError(t, "malformed JSON", resp, body, 400, 400, "JSON")
}

// Binary instances give base64; with auto commit, what GET records
// returned is committed, so the group's next instance reads on after it;
// a commit of named offsets commits the offset after each.
func TestV2ConsumerCommits(t *testing.T) {
	env, base, _ := startConfluent(t)
	cl := env.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Topic: "events", Partition: 0, Value: []byte{0xff, byte(i)}})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c := createConsumer(t, base, "cg2", `{"auto.offset.reset":"earliest"}`)
	c.subscribe(base, "events")
	got := c.readAll(10, base)
	for i, r := range got {
		var v string
		json.Unmarshal(r.Value, &v)
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) != 2 || b[1] != byte(r.Offset) || string(r.Key) != "null" {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	// Deleting the instance leaves the group, committing what it returned.
	if resp, body := do(t, "DELETE", c.instance(base), "", nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	recs = recs[:0]
	for i := 10; i < 15; i++ {
		recs = append(recs, &kgo.Record{Topic: "events", Partition: 0, Value: []byte{0xff, byte(i)}})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	next := createConsumer(t, base, "cg2", `{"auto.offset.reset":"earliest","auto.commit.enable":false}`)
	next.subscribe(base, "events")
	again := next.readAll(5, base)
	if again[0].Offset != 10 {
		t.Fatalf("the group's next instance began at offset %d, want 10", again[0].Offset)
	}
	// Commit offset 12 by name: the group reads on from 13.
	resp, body := do(t, "POST", next.instance(base)+"/offsets", `{"offsets":[{"topic":"events","partition":0,"offset":12}]}`, v2ct())
	if resp.StatusCode != 200 {
		t.Fatalf("commit: %d %s", resp.StatusCode, body)
	}
	offs, err := kadm.NewClient(env.DirectClient(t)).FetchOffsets(ctx, "cg2")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("events", 0); !ok || o.At != 13 {
		t.Fatalf("committed %+v, want 13", o)
	}
}

// startHTTPCluster runs three nodes with remoting between them, each
// serving HTTP (the topic events seeded with 3 partitions), and returns
// their HTTP bases.
func startHTTPCluster(t *testing.T, opts ...testenv.Option) (*testenv.Cluster, []string) {
	t.Helper()
	if race.Enabled {
		t.Skip("remoting between nodes in one process: run without -race (make test does)")
	}
	c := testenv.StartClusterWith(t, 3, []kfake.Opt{kfake.SeedTopics(3, "events")}, append([]testenv.Option{func(cfg *config.Config) {
		cfg.Cluster.Remote = "127.0.0.1:0"
		cfg.HTTP.Listen = "127.0.0.1:0"
	}}, opts...)...)
	bases := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		b, ok := n.Binding("http")
		if !ok {
			t.Fatalf("node %d serves no HTTP", i)
		}
		bases[i] = "http://" + b.(*httpmap.Server).Addr().String()
	}
	return c, bases
}

// An instance's requests are served on any node alike (a sticky load
// balancer is not needed): create on node 0, subscribe on node 1, read
// through all three; when the node running the instance crashes, the
// instance goes on from a survivor, from the group's commits.
func TestRemotingV2ConsumerAcrossNodes(t *testing.T) {
	c, bases := startHTTPCluster(t, confluentOn)
	cl := c.Client(t, 0)
	inst := createConsumer(t, bases[0], "cg3", `{"name":"roaming","format":"json","auto.offset.reset":"earliest"}`)
	inst.subscribe(bases[1], "events")
	produceN(t, cl, "events", 30, func(i int) string { return fmt.Sprintf(`{"n":%d}`, i) })
	inst.readAll(30, bases...)

	owner := -1
	for i, n := range c.Nodes {
		if n.Registry().Owner("hosted", "http-consumer/cg3/roaming").ID == n.Registry().Self().ID {
			owner = i
		}
	}
	if owner < 0 {
		t.Fatal("no node owns the instance")
	}
	// Past an auto commit, then the owner crashes.
	resp, body := do(t, "POST", inst.instance(bases[owner])+"/offsets", "", v2ct())
	if resp.StatusCode != 200 {
		t.Fatalf("commit: %d %s", resp.StatusCode, body)
	}
	c.Crash(owner)
	var survivors []string
	for i, b := range bases {
		if i != owner {
			survivors = append(survivors, b)
		}
	}
	produceN(t, c.Client(t, (owner+1)%3), "events", 10, func(i int) string { return fmt.Sprintf(`{"n":%d}`, 100+i) })
	deadline := time.Now().Add(60 * time.Second)
	seen := map[string]bool{}
	for len(seen) < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("after node %d crashed: %d of 10 new records", owner, len(seen))
		}
		resp, body := do(t, "GET", inst.instance(survivors[0])+"/records?timeout=500", "", map[string]string{"Accept": "application/vnd.kafka.json.v2+json"})
		if resp.StatusCode != http.StatusOK {
			time.Sleep(200 * time.Millisecond) // the instance moving
			continue
		}
		var recs []v2Record
		json.Unmarshal([]byte(body), &recs)
		for _, r := range recs {
			var v struct{ N int }
			json.Unmarshal(r.Value, &v)
			if v.N < 100 {
				t.Fatalf("record %s came again after it was committed", r.Value)
			}
			seen[string(r.Value)] = true
		}
	}
}

// An instance unused for http.consumers.instance_timeout expires, as
// the REST Proxy's do; one in use does not.
func TestV2ConsumerExpires(t *testing.T) {
	_, base, _ := startConfluent(t, func(cfg *config.Config) { cfg.HTTP.Consumers.InstanceTimeout = config.Duration(time.Second) })
	idle := createConsumer(t, base, "cg4", `{"name":"idle"}`)
	busy := createConsumer(t, base, "cg4", `{"name":"busy"}`)
	busy.subscribe(base, "events")
	for range 6 {
		busy.records(base) // each waits up to 500 ms
	}
	resp, body := do(t, "GET", idle.instance(base)+"/subscription", "", nil)
	wantError(t, "an idle instance after its timeout", resp, body, 404, 40403, "Consumer instance not found")
	if resp, body := do(t, "GET", busy.instance(base)+"/subscription", "", nil); resp.StatusCode != 200 {
		t.Fatalf("an instance in use: %d %s", resp.StatusCode, body)
	}
}
