package mesh_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/actors/table"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/race"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/mesh"
)

// scanAll reads every entry with prefix, page by page of limit.
func scanAll(t *testing.T, ctx context.Context, tb *mesh.Table, prefix string, limit int) ([]mesh.Entry, map[int32]int64) {
	t.Helper()
	var all []mesh.Entry
	var first map[int32]int64
	var after []byte
	for {
		page, err := tb.Scan(ctx, mesh.ScanOptions{Prefix: []byte(prefix), After: after, Limit: limit})
		if err != nil {
			t.Fatalf("scan %q after %q: %v", prefix, after, err)
		}
		if first == nil {
			first = page.Positions
		}
		all = append(all, page.Entries...)
		if !page.More {
			return all, first
		}
		if len(page.Entries) == 0 {
			t.Fatal("a page with more and no entries")
		}
		after = page.Entries[len(page.Entries)-1].Key
	}
}

// contents is what the entries hold, by key.
func contents(es []mesh.Entry) map[string]string {
	out := map[string]string{}
	for _, e := range es {
		out[string(e.Key)] = string(e.Value)
	}
	return out
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

func entryKeys(es []mesh.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e.Key)
	}
	return out
}

// Put, Get, Scan and Delete on one node: a Get after a Put or a Delete
// sees it; Scan pages keys in order by prefix; a Delete is a Kafka
// tombstone (a null value) that Kafka clients read as one.
func TestTablePutGetScanDelete(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	const topic = "tbl"
	createTopic(t, ctx, env.Client(t), topic, 3)
	tb := env.Node.Mesh().Table(topic)

	want := map[string]string{}
	for i := range 30 {
		k, v := fmt.Sprintf("user/%02d", i), fmt.Sprintf("v%d", i)
		e, err := tb.Put(ctx, []byte(k), []byte(v), mesh.Header{Key: "h", Value: []byte(k)})
		if err != nil {
			t.Fatal(err)
		}
		if e.Partition != mesh.KeyPartition([]byte(k), 3) || e.Offset < 0 {
			t.Fatalf("%s written to %d@%d", k, e.Partition, e.Offset)
		}
		want[k] = v
		if _, err := tb.Put(ctx, []byte(fmt.Sprintf("other/%d", i)), []byte("o")); err != nil {
			t.Fatal(err)
		}
	}
	e, ok, err := tb.Get(ctx, []byte("user/07"))
	if err != nil || !ok || string(e.Value) != "v7" || len(e.Headers) != 1 || string(e.Headers[0].Value) != "user/07" || e.Timestamp.IsZero() {
		t.Fatalf("Get user/07: %+v %v %v", e, ok, err)
	}
	if _, ok, err := tb.Get(ctx, []byte("user/99")); ok || err != nil {
		t.Fatalf("Get of a key never written: %v %v", ok, err)
	}

	if _, err := tb.Put(ctx, []byte("user/01"), []byte("again")); err != nil {
		t.Fatal(err)
	}
	want["user/01"] = "again"
	if e, _, _ := tb.Get(ctx, []byte("user/01")); string(e.Value) != "again" {
		t.Fatalf("after a second Put: %q", e.Value)
	}
	if err := tb.Delete(ctx, []byte("user/02")); err != nil {
		t.Fatal(err)
	}
	delete(want, "user/02")
	if _, ok, err := tb.Get(ctx, []byte("user/02")); ok || err != nil {
		t.Fatalf("Get after Delete: %v %v", ok, err)
	}
	// An empty value is a value, not a delete.
	if _, err := tb.Put(ctx, []byte("user/03"), nil); err != nil {
		t.Fatal(err)
	}
	want["user/03"] = ""
	if e, ok, _ := tb.Get(ctx, []byte("user/03")); !ok || e.Value == nil || len(e.Value) != 0 {
		t.Fatalf("an empty value: %+v %v", e, ok)
	}

	got, _ := scanAll(t, ctx, tb, "user/", 7)
	if !slices.Equal(entryKeys(got), sortedKeys(want)) || !maps.Equal(contents(got), want) {
		t.Fatalf("scan user/:\n got %v\nwant %v", contents(got), want)
	}
	page, err := tb.Scan(ctx, mesh.ScanOptions{Prefix: []byte("user/"), After: []byte("user/27")})
	if err != nil || page.More || !slices.Equal(entryKeys(page.Entries), []string{"user/28", "user/29"}) || len(page.Positions) != 3 {
		t.Fatalf("scan after user/27: %v more %v positions %v, %v", entryKeys(page.Entries), page.More, page.Positions, err)
	}
	if all, _ := scanAll(t, ctx, tb, "", 1000); len(all) != 59 {
		t.Fatalf("%d entries in all", len(all))
	}

	// The delete reached Kafka as a tombstone.
	cl := env.DirectClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var tombstone *kgo.Record
	for tombstone == nil {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == "user/02" && r.Value == nil {
				tombstone = r
			}
		})
	}

	if _, _, err := tb.Get(ctx, nil); err == nil {
		t.Fatal("Get of a nil key")
	}
	if _, _, err := env.Node.Mesh().Table("no-such-topic").Get(ctx, []byte("k")); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("a table of a topic upstream lacks: %v", err)
	}
}

// Records Kafka clients write, keyed values and tombstones, are in the
// table as they are in the topic.
func TestTableFollowsKafkaWriters(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	const topic = "tbl-kafka"
	createTopic(t, ctx, env.Client(t), topic, 1)
	tb := env.Node.Mesh().Table(topic)
	if _, ok, err := tb.Get(ctx, []byte("a")); ok || err != nil { // loaded, empty
		t.Fatalf("an empty table: %v %v", ok, err)
	}
	kp := env.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	want := map[string]string{}
	for i := range 100 {
		k := fmt.Sprintf("k%02d", i%40)
		r := &kgo.Record{Key: []byte(k), Value: []byte(fmt.Sprint(i))}
		if i%7 == 0 {
			r.Value = nil
			delete(want, k)
		} else {
			want[k] = fmt.Sprint(i)
		}
		if err := kp.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// A Put on the one partition is applied after every record before it.
	if _, err := tb.Put(ctx, []byte("zz"), []byte("last")); err != nil {
		t.Fatal(err)
	}
	want["zz"] = "last"
	got, _ := scanAll(t, ctx, tb, "", 10)
	if !maps.Equal(contents(got), want) {
		t.Fatalf("the table:\n got %v\nwant %v", contents(got), want)
	}
}

// A compacted topic, with superseded values and tombstones compacted
// away (and tombstones kept, under the default delete.retention.ms),
// makes a new table that answers what the topic means: its reads cross
// the gaps compaction left and it loads to the topic's end.
func TestTableAfterCompaction(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 2*time.Minute)
	for _, retention := range []string{"0", "86400000"} {
		topic := "compacted-" + retention
		resp, err := kadm.NewClient(env.DirectClient(t)).CreateTopics(ctx, 1, 1,
			map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "delete.retention.ms": kadm.StringPtr(retention)}, topic)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
		kp := env.DirectClient(t, kgo.DefaultProduceTopic(topic))
		want := map[string]string{}
		write := func(k string, v []byte) {
			if err := kp.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: v}).FirstErr(); err != nil { // a batch each
				t.Fatal(err)
			}
			if v == nil {
				delete(want, k)
			} else {
				want[k] = string(v)
			}
		}
		for round := range 3 {
			for k := range 10 {
				write(fmt.Sprintf("k%d", k), []byte(fmt.Sprintf("%d-%d", k, round)))
			}
		}
		write("k3", nil)
		write("k7", nil)
		write("k5", nil)
		write("k5", []byte("back"))
		write("k9", []byte("last")) // the last batch, which compaction keeps

		// The table before compaction.
		tb := env.Node.Mesh().Table(topic)
		before, _ := scanAll(t, ctx, tb, "", 3)
		if !maps.Equal(contents(before), want) {
			t.Fatalf("%s before compaction:\n got %v\nwant %v", topic, contents(before), want)
		}

		env.Upstream.Compact()
		end, kept := readAll(t, ctx, env, topic)
		if kept >= 35 || kept < len(want) {
			t.Fatalf("%s: %d records kept of 35 (%d keys): not compacted", topic, kept, len(want))
		}
		if end != 35 {
			t.Fatalf("%s: end offset %d after compaction", topic, end)
		}
	}

	// A restarted node's tables load from the compacted logs.
	env.RestartNode(t)
	for _, retention := range []string{"0", "86400000"} {
		topic := "compacted-" + retention
		tb := env.Node.Mesh().Table(topic)
		got, positions := scanAll(t, ctx, tb, "", 3)
		want := map[string]string{"k0": "0-2", "k1": "1-2", "k2": "2-2", "k4": "4-2", "k5": "back", "k6": "6-2", "k8": "8-2", "k9": "last"}
		if !maps.Equal(contents(got), want) {
			t.Fatalf("%s after compaction:\n got %v\nwant %v", topic, contents(got), want)
		}
		if positions[0] != 35 {
			t.Fatalf("%s: positions %v, want the end, 35", topic, positions)
		}
		for _, k := range []string{"k3", "k7"} {
			if _, ok, err := tb.Get(ctx, []byte(k)); ok || err != nil {
				t.Fatalf("%s: deleted %s: %v %v", topic, k, ok, err)
			}
		}
		if e, ok, err := tb.Get(ctx, []byte("k5")); !ok || err != nil || string(e.Value) != "back" || e.Offset != 33 {
			t.Fatalf("%s: k5 = %+v %v %v", topic, e, ok, err)
		}
	}
}

// readAll reads a one-partition topic from upstream to its end: the end
// offset and how many records it holds.
func readAll(t *testing.T, ctx context.Context, env *testenv.Env, topic string) (end int64, n int) {
	t.Helper()
	offs, err := kadm.NewClient(env.DirectClient(t)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := offs.Lookup(topic, 0)
	cl := env.DirectClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	last := int64(-1)
	for last < o.Offset-1 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { n++; last = r.Offset })
	}
	return o.Offset, n
}

// Watch from a scan's positions delivers exactly the changes after the
// scan, deletes as nil values, and only those of its prefix.
func TestTableWatchAfterScan(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	const topic = "tbl-watch"
	createTopic(t, ctx, env.Client(t), topic, 3)
	tb := env.Node.Mesh().Table(topic)
	for i := range 10 {
		if _, err := tb.Put(ctx, []byte(fmt.Sprintf("w/%d", i)), []byte("before")); err != nil {
			t.Fatal(err)
		}
	}
	got, positions := scanAll(t, ctx, tb, "w/", 100)
	if len(got) != 10 {
		t.Fatalf("%d entries", len(got))
	}
	w, err := tb.Watch(ctx, []byte("w/"), positions)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := tb.Put(ctx, []byte("w/1"), []byte("after")); err != nil {
		t.Fatal(err)
	}
	if err := tb.Delete(ctx, []byte("w/2")); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Put(ctx, []byte("x/1"), []byte("not watched")); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Put(ctx, []byte("w/new"), []byte("after")); err != nil {
		t.Fatal(err)
	}
	changes := map[string][]byte{}
	for _, r := range next(t, ctx, w, 3) {
		changes[string(r.Key)] = r.Value
	}
	if len(changes) != 3 || string(changes["w/1"]) != "after" || changes["w/2"] != nil || string(changes["w/new"]) != "after" {
		t.Fatalf("changes: %q", changes)
	}
	if v, ok := changes["w/2"]; !ok || v != nil {
		t.Fatalf("the delete came as %q, %v", v, ok)
	}
	quiet(t, w, 300*time.Millisecond)
}

// A table past tables.max_bytes refuses every call with an error that
// names the bound, instead of growing.
func TestTableMemoryBound(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) { c.Tables.MaxBytes = 4 * config.KiB })
	ctx := timeout(t, time.Minute)
	const topic = "tbl-bound"
	createTopic(t, ctx, env.Client(t), topic, 1)
	tb := env.Node.Mesh().Table(topic)
	var err error
	for i := 0; err == nil; i++ {
		if i > 100 {
			t.Fatal("100 puts of 200 bytes in a table bounded at 4 KiB")
		}
		_, err = tb.Put(ctx, []byte(fmt.Sprintf("k%d", i)), bytes.Repeat([]byte("v"), 200))
	}
	if !errors.Is(err, mesh.ErrTableMemory) || !strings.Contains(err.Error(), "tables.max_bytes") {
		t.Fatalf("Put past the bound: %v", err)
	}
	if _, _, err := tb.Get(ctx, []byte("k0")); !errors.Is(err, mesh.ErrTableMemory) {
		t.Fatalf("Get past the bound: %v", err)
	}
	if _, err := tb.Scan(ctx, mesh.ScanOptions{}); !errors.Is(err, mesh.ErrTableMemory) {
		t.Fatalf("Scan past the bound: %v", err)
	}
}

// On three nodes, a Put on one node is seen by a Get on another; when the
// table's owner crashes, the table is rebuilt on another node, and Get
// and Scan from the survivors answer its full contents, every
// acknowledged write included.
func TestRemotingTableOwnerCrash(t *testing.T) {
	if race.Enabled {
		t.Skip("remoting between nodes in one process: run without -race (make test does)")
	}
	c := testenv.StartCluster(t, 3, func(cfg *config.Config) { cfg.Cluster.Remote = "127.0.0.1:0" })
	ctx := timeout(t, 2*time.Minute)
	const topic = "tbl-remote"
	createTopic(t, ctx, c.Client(t, 0), topic, 3)
	owner := int(c.Nodes[0].Registry().Owner(table.Kind, table.Identity("default", topic)).ID)
	writer, reader := (owner+1)%3, (owner+2)%3
	tw, tr := c.Nodes[writer].Mesh().Table(topic), c.Nodes[reader].Mesh().Table(topic)

	want := map[string]string{}
	for i := range 200 {
		k := fmt.Sprintf("k%03d", i)
		if _, err := tw.Put(ctx, []byte(k), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		want[k] = fmt.Sprint(i)
		if i%50 == 0 { // read-your-writes across nodes
			if e, ok, err := tr.Get(ctx, []byte(k)); err != nil || !ok || string(e.Value) != fmt.Sprint(i) {
				t.Fatalf("Get %s on another node: %q %v %v", k, e.Value, ok, err)
			}
		}
	}
	for i := range 20 {
		k := fmt.Sprintf("k%03d", i*3)
		if err := tw.Delete(ctx, []byte(k)); err != nil {
			t.Fatal(err)
		}
		delete(want, k)
	}
	if !c.Nodes[owner].TableActive(topic) {
		t.Fatalf("node %d owns the table and does not hold it", owner)
	}
	got, _ := scanAll(t, ctx, tr, "", 64)
	if !maps.Equal(contents(got), want) {
		t.Fatalf("before the crash: %d entries, want %d", len(got), len(want))
	}

	c.Crash(owner)
	got, _ = scanAll(t, ctx, tr, "", 64)
	if !maps.Equal(contents(got), want) {
		t.Fatalf("after the owner crashed: %d entries, want %d", len(got), len(want))
	}
	if _, err := tw.Put(ctx, []byte("after"), []byte("crash")); err != nil {
		t.Fatal(err)
	}
	if e, ok, err := tr.Get(ctx, []byte("after")); err != nil || !ok || string(e.Value) != "crash" {
		t.Fatalf("Get after the crash: %q %v %v", e.Value, ok, err)
	}
	if e, ok, err := tw.Get(ctx, []byte("k199")); err != nil || !ok || string(e.Value) != "199" {
		t.Fatalf("Get k199 after the crash: %q %v %v", e.Value, ok, err)
	}
}
