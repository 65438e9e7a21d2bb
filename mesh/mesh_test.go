package mesh_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/race"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/mesh"
	"github.com/meshka/meshka/records"
)

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func createTopic(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, partitions int32) {
	t.Helper()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// next takes n records from s, failing the test on an error or a wait
// past the context.
func next(t *testing.T, ctx context.Context, s *mesh.Subscription, n int) []mesh.Record {
	t.Helper()
	out := make([]mesh.Record, 0, n)
	for len(out) < n {
		r, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d records: %v", len(out), n, err)
		}
		out = append(out, r)
	}
	return out
}

// quiet fails the test if s delivers anything within d.
func quiet(t *testing.T, s *mesh.Subscription, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if r, err := s.Next(ctx); err == nil {
		t.Fatalf("an extra record: %s/%d@%d key %q", r.Topic, r.Partition, r.Offset, r.Key)
	}
}

// Records produced through the API are read by a Kafka client as written,
// keyed records on the partition a Kafka producer picks; a subscription
// gets exactly the records its filter matches, in offset order per
// partition, whether a Kafka client or the API wrote them.
func TestProduceAndSubscribe(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	const topic, parts = "api", 4
	createTopic(t, ctx, env.Client(t), topic, parts)
	m := env.Node.Mesh()

	sub, err := m.Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.Earliest(), Filter: mesh.Filter{Key: mesh.KeyPrefix([]byte("a-"))}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	for _, codec := range []records.Codec{records.CodecNone, records.CodecZstd} {
		p := m.NewProducer(mesh.ProducerOptions{Compression: codec, Linger: time.Millisecond})
		var recs []mesh.Record
		for i := range 100 {
			prefix := "a-"
			if i%2 == 1 {
				prefix = "b-"
			}
			recs = append(recs, mesh.Record{Topic: topic, Partition: -1, Key: []byte(fmt.Sprintf("%s%s-%d", prefix, codec, i)),
				Value: []byte(fmt.Sprintf("value %d", i)), Headers: []mesh.Header{{Key: "i", Value: []byte(fmt.Sprint(i))}}})
		}
		written, err := p.ProduceSync(ctx, recs...)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range written {
			if want := mesh.KeyPartition(recs[i].Key, parts); w.Partition != want || w.Offset < 0 {
				t.Fatalf("record %d written to %d@%d, want partition %d", i, w.Partition, w.Offset, want)
			}
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// A Kafka client reads all 200 where the API said they went.
	cl := env.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]*kgo.Record{}
	for len(seen) < 200 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Key)] = r })
	}
	for k, r := range seen {
		if r.Partition != mesh.KeyPartition([]byte(k), parts) || len(r.Headers) != 1 || r.Headers[0].Key != "i" {
			t.Fatalf("record %q read on partition %d with headers %v", k, r.Partition, r.Headers)
		}
	}

	// A Kafka producer's compressed records reach the subscriber too.
	kp := env.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	for i := range 20 {
		if err := kp.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprintf("a-kafka-%d", i)), Value: []byte("k")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	got := next(t, ctx, sub, 120)
	last := map[int32]int64{}
	for _, r := range got {
		if !strings.HasPrefix(string(r.Key), "a-") {
			t.Fatalf("the filter let %q through", r.Key)
		}
		if o, ok := last[r.Partition]; ok && r.Offset <= o {
			t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, o)
		}
		last[r.Partition] = r.Offset
		if k := seen[string(r.Key)]; k != nil && (k.Offset != r.Offset || string(k.Value) != string(r.Value)) {
			t.Fatalf("%q: subscriber got %d %q, Kafka client %d %q", r.Key, r.Offset, r.Value, k.Offset, k.Value)
		}
	}
	quiet(t, sub, 300*time.Millisecond)
	sub.Close()
	if _, err := sub.Next(ctx); !errors.Is(err, mesh.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

// Many subscribers of one partition with different filters each get
// exactly their records, from one upstream stream: upstream sends the
// partition about once, not once per subscriber.
func TestManySubscribersOneStream(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 2*time.Minute)
	const topic, subscribers, filters, n = "fanout", 1000, 50, 2000
	createTopic(t, ctx, env.Client(t), topic, 1)
	m := env.Node.Mesh()
	subs := make([]*mesh.Subscription, subscribers)
	for i := range subs {
		var err error
		subs[i], err = m.Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.Earliest(),
			Filter: mesh.Filter{Headers: [][]mesh.HeaderMatch{{{Name: "f", Value: []byte(fmt.Sprint(i % filters))}}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	before := env.UpstreamSent.Load()
	p := m.NewProducer(mesh.ProducerOptions{Linger: time.Millisecond})
	var recs []mesh.Record
	for i := range n {
		recs = append(recs, mesh.Record{Topic: topic, Partition: 0, Value: make([]byte, 100),
			Headers: []mesh.Header{{Key: "f", Value: []byte(fmt.Sprint(i % filters))}, {Key: "i", Value: []byte(fmt.Sprint(i))}}})
	}
	if _, err := p.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, subscribers)
	for i, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range n / filters {
				r, err := s.Next(ctx)
				if err != nil {
					errs <- fmt.Errorf("subscriber %d, record %d: %w", i, j, err)
					return
				}
				f, _ := r.HeaderValue("f")
				idx, _ := r.HeaderValue("i")
				if string(f) != fmt.Sprint(i%filters) || string(idx) != fmt.Sprint(j*filters+i%filters) {
					errs <- fmt.Errorf("subscriber %d got record %s (filter %s) as its %dth", i, idx, f, j)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, s := range subs[:5] {
		quiet(t, s, 100*time.Millisecond)
	}
	// n records of ~130 bytes: one stream brings ~260 KB; one per
	// subscriber would be 1000 times that.
	if sent := env.UpstreamSent.Load() - before; sent > 4*n*130 {
		t.Fatalf("upstream sent %d bytes for %d subscribers of %d records (~%d bytes)", sent, subscribers, n, n*130)
	}
}

// A subscriber that does not keep up is paused and goes on alone, losing
// nothing, while another keeps its rate; with CutOff it is cut off with
// the offsets to resume from, and resuming there loses nothing either.
func TestSlowSubscriber(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 2*time.Minute)
	const topic, n = "slow", 500
	createTopic(t, ctx, env.Client(t), topic, 1)
	m := env.Node.Mesh()
	fast, err := m.Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.Earliest(), Queue: 8})
	if err != nil {
		t.Fatal(err)
	}
	paused, err := m.Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.Earliest(), Queue: 8})
	if err != nil {
		t.Fatal(err)
	}
	cut, err := m.Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.Earliest(), Queue: 8, Slow: mesh.CutOff})
	if err != nil {
		t.Fatal(err)
	}
	p := m.NewProducer(mesh.ProducerOptions{})
	go func() {
		for i := range n {
			p.Produce(ctx, mesh.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprint(i))}, nil)
		}
	}()
	// The fast one reads everything while the others read nothing.
	for i, r := range next(t, ctx, fast, n) {
		if r.Offset != int64(i) {
			t.Fatalf("fast subscriber: record %d at offset %d", i, r.Offset)
		}
	}
	for i, r := range next(t, ctx, paused, n) {
		if r.Offset != int64(i) || string(r.Value) != fmt.Sprint(i) {
			t.Fatalf("paused subscriber: record %d is offset %d, %q", i, r.Offset, r.Value)
		}
	}
	var got int64
	var se *mesh.SlowError
	for {
		r, err := cut.Next(ctx)
		if errors.As(err, &se) {
			break
		}
		if err != nil {
			t.Fatalf("cut off subscriber: %v", err)
		}
		if r.Offset != got {
			t.Fatalf("cut off subscriber: offset %d, want %d", r.Offset, got)
		}
		got++
	}
	if got >= n || se.Positions[0] != got {
		t.Fatalf("cut off after %d records with positions %v", got, se.Positions)
	}
	again, err := m.Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.AtOffsets(se.Positions)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range next(t, ctx, again, int(n-got)) {
		if r.Offset != got {
			t.Fatalf("resumed subscriber: offset %d, want %d", r.Offset, got)
		}
		got++
	}
}

// A subscriber on a node that does not own the partition gets what one on
// the owner gets, read over the mesh from the owner's cache; when the
// owner dies, the survivor's subscriber goes on at the new owner with
// every acknowledged record.
func TestRemotingSubscriberOnAnotherNode(t *testing.T) {
	if race.Enabled {
		t.Skip("remoting between nodes in one process: run without -race (make test does)")
	}
	c := testenv.StartCluster(t, 3, func(cfg *config.Config) { cfg.Cluster.Remote = "127.0.0.1:0" })
	ctx := timeout(t, 2*time.Minute)
	const topic = "api-remote"
	createTopic(t, ctx, c.Client(t, 0), topic, 1)
	owner := int(c.Nodes[0].Registry().Owner(partition.Kind, partition.Identity("default", topic, 0)).ID)
	other, third := (owner+1)%3, (owner+2)%3
	onOwner, err := c.Nodes[owner].Mesh().Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.Earliest()})
	if err != nil {
		t.Fatal(err)
	}
	onOther, err := c.Nodes[other].Mesh().Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.Earliest(),
		Filter: mesh.Filter{Key: mesh.KeyPrefix([]byte("k"))}})
	if err != nil {
		t.Fatal(err)
	}
	p := c.Nodes[third].Mesh().NewProducer(mesh.ProducerOptions{})
	var recs []mesh.Record
	for i := range 300 {
		recs = append(recs, mesh.Record{Topic: topic, Partition: 0, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprint(i))})
	}
	if _, err := p.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	a, b := next(t, ctx, onOwner, 300), next(t, ctx, onOther, 300)
	for i := range a {
		if a[i].Offset != int64(i) || b[i].Offset != a[i].Offset || string(b[i].Value) != string(a[i].Value) {
			t.Fatalf("record %d: owner's subscriber %d %q, other's %d %q", i, a[i].Offset, a[i].Value, b[i].Offset, b[i].Value)
		}
	}
	if c.Nodes[other].PartitionActive(topic, 0) || c.Nodes[other].CacheBytes() != 0 {
		t.Fatal("the other node streams the partition itself")
	}

	c.Crash(owner)
	var acked []mesh.Record
	for i := 300; len(acked) < 100; i++ {
		w, err := p.ProduceSync(ctx, mesh.Record{Topic: topic, Partition: 0, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprint(i))})
		if err == nil {
			acked = append(acked, w[0])
		} else if ctx.Err() != nil {
			t.Fatal(err)
		}
	}
	want := map[int64]string{}
	for _, w := range acked {
		want[w.Offset] = string(w.Value)
	}
	for len(want) > 0 {
		r, err := onOther.Next(ctx)
		if err != nil {
			t.Fatalf("after the owner died, %d acknowledged records missing: %v", len(want), err)
		}
		if v, ok := want[r.Offset]; ok && v == string(r.Value) {
			delete(want, r.Offset)
		}
	}
}

// Records that pile up while a batch is on its way go in batches under
// the topic's largest message (1 MiB by default), never one upstream
// refuses as too large.
func TestProducerBatchesFitTheLimit(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	const topic = "big"
	createTopic(t, ctx, env.Client(t), topic, 1)
	p := env.Node.Mesh().NewProducer(mesh.ProducerOptions{MaxBuffered: 20000})
	recs := make([]mesh.Record, 8000)
	for i := range recs {
		recs[i] = mesh.Record{Topic: topic, Partition: 0, Key: []byte(fmt.Sprint(i)), Value: make([]byte, 1000),
			Headers: []mesh.Header{{Key: "h", Value: []byte("v")}}}
	}
	written, err := p.ProduceSync(ctx, recs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range written {
		if w.Offset != int64(i) {
			t.Fatalf("record %d at offset %d", i, w.Offset)
		}
	}
}

// Records without a key fill one partition's batch at a time, and the
// next batch goes to the next partition, as Kafka's sticky partitioner
// does: sent one batch each, they cover every partition in turn.
func TestProducerSpreadsRecordsWithoutKey(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	const topic, parts = "keyless", 3
	createTopic(t, ctx, env.Client(t), topic, parts)
	p := env.Node.Mesh().NewProducer(mesh.ProducerOptions{})
	defer p.Close(ctx)
	var got []int32
	for i := range 6 {
		written, err := p.ProduceSync(ctx, mesh.Record{Topic: topic, Partition: -1, Value: []byte(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, written[0].Partition)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != (got[i-1]+1)%parts {
			t.Fatalf("records without a key, one batch each, went to partitions %v: want each batch on the next partition", got)
		}
	}
}

// ReadTo counts what a subscription has read past, records its filter
// skips included, once its queue is empty; Positions only what Next
// returned.
func TestSubscriptionReadTo(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 30*time.Second)
	const topic = "readto"
	createTopic(t, ctx, env.Client(t), topic, 1)
	m := env.Node.Mesh()
	sub, err := m.Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.Earliest(), Filter: mesh.Filter{Key: mesh.KeyPrefix([]byte("a"))}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if at := sub.ReadTo(0); at != 0 {
		t.Fatalf("ReadTo before anything: %d", at)
	}
	p := m.NewProducer(mesh.ProducerOptions{})
	defer p.Close(ctx)
	for _, k := range []string{"a1", "b1", "b2"} {
		if _, err := p.ProduceSync(ctx, mesh.Record{Topic: topic, Partition: 0, Key: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	for sub.ReadTo(0) != -1 && sub.ReadTo(0) < 1 {
		time.Sleep(10 * time.Millisecond) // a1 is queued: -1 until Next takes it
	}
	next(t, ctx, sub, 1)
	for sub.ReadTo(0) < 3 {
		if ctx.Err() != nil {
			t.Fatalf("ReadTo %d, want 3", sub.ReadTo(0))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if pos := sub.Positions()[0]; pos != 1 {
		t.Fatalf("Positions %d, want 1 (after a1)", pos)
	}
	if got := sub.ReadTo(1); got != -1 {
		t.Fatalf("ReadTo of a partition not subscribed: %d", got)
	}
}

// Subscriptions starting at once share one ListOffsets upstream per
// partition (while the first is on its way, the others wait for its
// answer), and each still gets what is produced after it started.
func TestSubscriptionsShareStartOffsets(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 30*time.Second)
	const topic, n = "crowd", 20
	createTopic(t, ctx, env.Client(t), topic, 1)
	m := env.Node.Mesh()
	var asked atomic.Int32
	held := make(chan struct{})
	env.Upstream.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		env.Upstream.KeepControl()
		if asked.Add(1) == 1 {
			<-held // the first waits until every subscriber has asked
		}
		return nil, nil, false
	})
	subs := make([]*mesh.Subscription, n)
	errs := make(chan error, n)
	var started sync.WaitGroup
	for i := range n {
		started.Add(1)
		go func() {
			started.Done()
			s, err := m.Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.Latest()})
			subs[i] = s
			errs <- err
		}()
	}
	started.Wait()
	time.Sleep(200 * time.Millisecond) // every Subscribe is waiting on the first ListOffsets
	close(held)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Once for the subscriptions; the node may ask once more for the
	// partition's own stream. Unshared, it is n.
	if got := asked.Load(); got > 2 {
		t.Fatalf("%d subscriptions starting together asked upstream %d times, want once (twice with the partition's stream)", n, got)
	}
	p := m.NewProducer(mesh.ProducerOptions{})
	defer p.Close(ctx)
	if _, err := p.ProduceSync(ctx, mesh.Record{Topic: topic, Partition: 0, Value: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	for i, s := range subs {
		if r := next(t, ctx, s, 1)[0]; string(r.Value) != "after" {
			t.Fatalf("subscriber %d got %q", i, r.Value)
		}
		s.Close()
	}
}
