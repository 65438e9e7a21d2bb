package mesh_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/mesh"
)

// With a topics rule's validate_fetch, subscriptions skip the records the
// rule refuses, whether the partition's shared reader hands them over or
// a subscriber reads on its own; each skip is counted once per read.
// Kafka clients still read every record.
func TestSubscriptionsSkipInvalidRecords(t *testing.T) {
	const topic = "checked"
	env := testenv.Start(t, func(cfg *config.Config) {
		cfg.Topics = []config.TopicRule{{Topic: topic, ValidateFetch: true, Value: &config.FormatSpec{Format: "int64", SchemaID: "record"}}}
	})
	ctx := timeout(t, time.Minute)
	createTopic(t, ctx, env.Client(t), topic, 1)
	m := env.Node.Mesh()

	live, err := m.Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.Earliest()})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	long := func(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
	values := [][]byte{long(1), []byte("one"), long(2), long(3), []byte("four"), long(4)}
	kc := env.DirectClient(t)
	for _, v := range values {
		if err := kc.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name string, got []mesh.Record) {
		t.Helper()
		want := []int64{0, 2, 3, 5}
		for i, r := range got {
			if r.Offset != want[i] || len(r.Value) != 8 || binary.BigEndian.Uint64(r.Value) != uint64(i+1) {
				t.Fatalf("%s: record %d is offset %d, value %x; want offsets %v", name, i, r.Offset, r.Value, want)
			}
		}
	}
	check("live subscriber", next(t, ctx, live, 4))
	quiet(t, live, 500*time.Millisecond)
	if n := m.SkippedInvalid(); n != 2 {
		t.Fatalf("skipped %d records, want 2", n)
	}

	// A subscriber starting behind the shared reader reads on its own.
	late, err := m.Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.Earliest()})
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	check("late subscriber", next(t, ctx, late, 4))
	quiet(t, late, 500*time.Millisecond)
	if n := m.SkippedInvalid(); n != 4 {
		t.Fatalf("skipped %d records after the late subscriber read, want 4", n)
	}

	// The Kafka edge serves every record.
	cl := env.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var read int
	for read < len(values) && ctx.Err() == nil {
		read += cl.PollFetches(ctx).NumRecords()
	}
	if read != len(values) {
		t.Fatalf("a Kafka client read %d records, want %d", read, len(values))
	}
}
