package test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/internal/testenv"
)

// OffsetDelete is refused for a topic a live member subscribes to, and
// deletes the offsets upstream once the group is empty; ListGroups filters
// by state.
func TestGroupOffsetDeleteAndStateFilter(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 60*time.Second)
	const topic, group = "odel", "odel-g"
	createTopic(t, ctx, env.Client(t), topic, 2, nil)
	p := env.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := 0; i < 20; i++ {
		if err := p.ProduceSync(ctx, &kgo.Record{Partition: int32(i % 2), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c := env.Client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), fromStart(), kgo.DisableAutoCommit())
	consumeN(t, ctx, c, 20)
	if err := c.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	if got := committed(t, ctx, env.DirectClient(t), group, topic); got[0] != 10 || got[1] != 10 {
		t.Fatalf("upstream holds offsets %v for %s, want 10 for both partitions", got, group)
	}
	adm := kadm.NewClient(env.Client(t))

	stable, err := adm.ListGroups(ctx, "Stable")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := stable[group]; !ok {
		t.Fatalf("ListGroups(Stable) misses the live group: %v", stable.Groups())
	}
	if empty, err := adm.ListGroups(ctx, "Empty"); err != nil || len(empty[group].Group) != 0 {
		t.Fatalf("ListGroups(Empty) lists the live group: %v %v", empty, err)
	}

	refused, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {0: {}, 1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if e, ok := refused[topic][p]; !ok || e != kerr.GroupSubscribedToTopic {
			t.Fatalf("partition %d: %v (answered: %v), want GROUP_SUBSCRIBED_TO_TOPIC", p, e, ok)
		}
	}
	c.Close() // leaves the group: now Empty

	deleted, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {0: {}, 1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if e, ok := deleted[topic][p]; !ok || e != nil {
			t.Fatalf("partition %d: %v (answered: %v) after the group emptied, want deleted", p, e, ok)
		}
	}
	left, err := kadm.NewClient(env.DirectClient(t)).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if o, ok := left.Lookup(topic, p); ok && o.At >= 0 {
			t.Fatalf("partition %d: offset %d still stored upstream after OffsetDelete", p, o.At)
		}
	}
}
