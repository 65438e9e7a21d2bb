package mesh_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/actors/group"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/race"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/mesh"
)

// collector is what the members of a share delivered, by partition and
// offset.
type collector struct {
	mu   sync.Mutex
	seen map[[2]int64]int // {partition, offset}: times delivered
	by   map[[2]int64]int // {partition, offset}: the member that delivered it last
}

func newCollector() *collector {
	return &collector{seen: map[[2]int64]int{}, by: map[[2]int64]int{}}
}

// consume takes records from s until it ends, as member i.
func (c *collector) consume(s *mesh.Share, i int, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		r, err := s.Next(context.Background())
		if err != nil {
			return
		}
		k := [2]int64{int64(r.Partition), r.Offset}
		c.mu.Lock()
		c.seen[k]++
		c.by[k] = i
		c.mu.Unlock()
	}
}

// missing counts the produced records not delivered yet.
func (c *collector) missing(produced map[[2]int64]bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k := range produced {
		if c.seen[k] == 0 {
			n++
		}
	}
	return n
}

func (c *collector) duplicates() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, times := range c.seen {
		n += times - 1
	}
	return n
}

// waitUntil polls cond until it holds, failing the test with what
// describe says once ctx ends.
func waitUntil(t *testing.T, ctx context.Context, cond func() bool, describe func() string) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting: %s", describe())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// split checks that members' assignments of topic are disjoint, cover
// its partitions, and give each member the same number give or take one.
func split(members []*mesh.Share, topic string, partitions int) (string, bool) {
	owner := map[int32]int{}
	var sizes []int
	for i, s := range members {
		ps := s.Assigned()[topic]
		sizes = append(sizes, len(ps))
		for _, p := range ps {
			if _, dup := owner[p]; dup {
				return fmt.Sprintf("partition %d assigned twice", p), false
			}
			owner[p] = i
		}
	}
	desc := fmt.Sprintf("assignment sizes %v", sizes)
	if len(owner) != partitions {
		return desc, false
	}
	return desc, slices.Max(sizes)-slices.Min(sizes) <= 1
}

// produce writes per records to each partition of topic straight
// upstream and returns them by partition and offset.
func produce(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, partitions int32, per int, into map[[2]int64]bool) {
	t.Helper()
	var recs []*kgo.Record
	for p := range partitions {
		for i := range per {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf("%d-%d", p, i))})
		}
	}
	for _, r := range cl.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		into[[2]int64{int64(r.Record.Partition), r.Record.Offset}] = true
	}
}

// startMembers starts a member of the share o names on each of meshes,
// member i consuming into got; they close at the test's end.
func startMembers(t *testing.T, meshes []*mesh.Mesh, o mesh.ShareOptions, got *collector) []*mesh.Share {
	t.Helper()
	var wg sync.WaitGroup
	members := make([]*mesh.Share, len(meshes))
	t.Cleanup(func() {
		for _, s := range members {
			if s != nil {
				s.Close()
			}
		}
		wg.Wait()
	})
	for i, m := range meshes {
		s, err := m.Share(o)
		if err != nil {
			t.Fatal(err)
		}
		members[i] = s
		wg.Add(1)
		go got.consume(s, i, &wg)
	}
	return members
}

// waitSplit waits until members split topic's partitions evenly.
func waitSplit(t *testing.T, ctx context.Context, members []*mesh.Share, topic string, parts int) {
	t.Helper()
	waitUntil(t, ctx, func() bool { _, ok := split(members, topic, parts); return ok },
		func() string { d, _ := split(members, topic, parts); return d })
}

// waitDelivered waits until got has every record of produced.
func waitDelivered(t *testing.T, ctx context.Context, got *collector, produced map[[2]int64]bool, when string) {
	t.Helper()
	waitUntil(t, ctx, func() bool { return got.missing(produced) == 0 },
		func() string { return fmt.Sprintf("%s%d records not delivered", when, got.missing(produced)) })
}

func shareOptions(groupID, topic string) mesh.ShareOptions {
	return mesh.ShareOptions{Group: groupID, Topics: []string{topic}, Start: mesh.Earliest(),
		SessionTimeout: 6 * time.Second, HeartbeatInterval: 100 * time.Millisecond, CommitInterval: 100 * time.Millisecond}
}

func manualPartitioner() kgo.Opt { return kgo.RecordPartitioner(kgo.ManualPartitioner()) }

// A share of 3 members splits 12 partitions 4/4/4; when one leaves, the
// other two take its partitions and nothing produced is lost; the share
// is a Kafka group that Kafka tools see through meshka, and its offsets
// are committed upstream under its id.
func TestShareSplitsAndRebalances(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 2*time.Minute)
	const topic, groupID, parts = "shared", "share-1", 12
	createTopic(t, ctx, env.Client(t), topic, parts)
	m := env.Node.Mesh()
	got := newCollector()
	members := startMembers(t, []*mesh.Mesh{m, m, m}, shareOptions(groupID, topic), got)
	waitSplit(t, ctx, members, topic, parts)

	direct := env.DirectClient(t, manualPartitioner())
	produced := map[[2]int64]bool{}
	produce(t, ctx, direct, topic, parts, 50, produced)
	waitDelivered(t, ctx, got, produced, "")
	got.mu.Lock()
	for k, i := range got.by {
		if !slices.Contains(members[i].Assigned()[topic], int32(k[0])) {
			t.Errorf("member %d delivered partition %d, which it is not assigned", i, k[0])
		}
	}
	got.mu.Unlock()

	// A member leaves while records arrive.
	produce(t, ctx, direct, topic, parts, 50, produced)
	members[2].Close()
	produce(t, ctx, direct, topic, parts, 50, produced)
	rest := members[:2]
	waitSplit(t, ctx, rest, topic, parts)
	produce(t, ctx, direct, topic, parts, 50, produced)
	waitDelivered(t, ctx, got, produced, "after a member left, ")
	t.Logf("%d records delivered, %d of them twice", len(produced), got.duplicates())

	// Kafka's view of the share, through meshka.
	adm := kadm.NewClient(env.Client(t))
	described, err := adm.DescribeGroups(ctx, groupID)
	if err != nil {
		t.Fatal(err)
	}
	d := described[groupID]
	if d.Err != nil || len(d.Members) != 2 || d.Protocol != "sticky" || d.State != "Stable" {
		t.Fatalf("the group as Kafka sees it: state %s, protocol %q, %d members, err %v", d.State, d.Protocol, len(d.Members), d.Err)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := listed[groupID]; !ok || l.State != "Stable" {
		t.Fatalf("ListGroups through meshka: %+v", listed)
	}
	// Upstream holds the committed offsets: every partition's end.
	upAdm := kadm.NewClient(direct)
	waitUntil(t, ctx, func() bool {
		offs, err := upAdm.FetchOffsets(ctx, groupID)
		if err != nil {
			return false
		}
		for p := range int32(parts) {
			o, ok := offs.Lookup(topic, p)
			if !ok || o.At != 200 {
				return false
			}
		}
		return true
	}, func() string {
		offs, err := upAdm.FetchOffsets(ctx, groupID)
		return fmt.Sprintf("upstream's committed offsets of %s: %v %v", groupID, offs, err)
	})
}

// A share starting at Latest delivers what was written after Share
// returned, even while its group is still assigning: Latest is the end
// of each partition when Share was called, not when it was assigned.
func TestShareLatestIsWhenShareWasCalled(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	const topic, groupID, parts = "shared-latest", "share-latest", 4
	createTopic(t, ctx, env.Client(t), topic, parts)
	direct := env.DirectClient(t, manualPartitioner())
	before := map[[2]int64]bool{}
	produce(t, ctx, direct, topic, parts, 5, before)

	o := shareOptions(groupID, topic)
	o.Start = mesh.Latest()
	got := newCollector()
	members := startMembers(t, []*mesh.Mesh{env.Node.Mesh()}, o, got)
	produced := map[[2]int64]bool{}
	produce(t, ctx, direct, topic, parts, 5, produced)
	if len(members[0].Assigned()) != 0 {
		t.Log("the group assigned the member before the records were written; this run does not test the race")
	}
	waitDelivered(t, ctx, got, produced, "")
	got.mu.Lock()
	defer got.mu.Unlock()
	for k := range before {
		if got.seen[k] > 0 {
			t.Errorf("partition %d offset %d, written before Share, was delivered", k[0], k[1])
		}
	}
}

// A member's partitions start where the share committed: a new member
// of a share whose offsets are committed delivers only what came after.
func TestShareResumesFromCommits(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	const topic, groupID = "shared-resume", "share-resume"
	createTopic(t, ctx, env.Client(t), topic, 2)
	direct := env.DirectClient(t, manualPartitioner())
	first := map[[2]int64]bool{}
	produce(t, ctx, direct, topic, 2, 10, first)

	m := env.Node.Mesh()
	o := shareOptions(groupID, topic)
	o.Acknowledge = true
	s, err := m.Share(o)
	if err != nil {
		t.Fatal(err)
	}
	var acked []mesh.Record
	for range 20 {
		r, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.Offset < 5 { // acknowledge half of each partition
			acked = append(acked, r)
		}
	}
	s.Ack(acked...)
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()

	again, err := m.Share(o)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	seen := map[[2]int64]bool{}
	for len(seen) < 10 {
		r, err := again.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.Offset < 5 {
			t.Fatalf("partition %d offset %d came again after it was acknowledged and committed", r.Partition, r.Offset)
		}
		seen[[2]int64{int64(r.Partition), r.Offset}] = true
	}
}

// Members of one share on three nodes: the group actor is on one of them,
// the partitions' owners spread over all. One member leaves, then the
// node of another crashes: the last member ends with every partition,
// and every record produced meanwhile is delivered.
func TestRemotingShareAcrossNodes(t *testing.T) {
	if race.Enabled {
		t.Skip("remoting between nodes in one process: run without -race (make test does)")
	}
	c := testenv.StartCluster(t, 3, func(cfg *config.Config) { cfg.Cluster.Remote = "127.0.0.1:0" })
	ctx := timeout(t, 3*time.Minute)
	const topic, groupID, parts = "shared-remote", "share-remote", 12
	createTopic(t, ctx, c.Client(t, 0), topic, parts)
	coordinator := int(c.Nodes[0].Registry().Owner(group.Kind, group.Identity("default", groupID)).ID)
	got := newCollector()
	members := startMembers(t, []*mesh.Mesh{c.Nodes[0].Mesh(), c.Nodes[1].Mesh(), c.Nodes[2].Mesh()}, shareOptions(groupID, topic), got)
	waitSplit(t, ctx, members, topic, parts)
	direct := c.DirectClient(t, manualPartitioner())
	produced := map[[2]int64]bool{}
	produce(t, ctx, direct, topic, parts, 30, produced)
	waitDelivered(t, ctx, got, produced, "")

	// One member leaves: a member not on the coordinator's node, so the
	// crash below can take another member's node and the coordinator.
	leaving := (coordinator + 1) % 3
	members[leaving].Close()
	var rest []*mesh.Share
	for i, s := range members {
		if i != leaving {
			rest = append(rest, s)
		}
	}
	waitSplit(t, ctx, rest, topic, parts)
	produce(t, ctx, direct, topic, parts, 30, produced)

	// The coordinator's node, with its member, crashes: the group moves,
	// and the last member rejoins it and takes every partition.
	c.Crash(coordinator)
	last := members[(coordinator+2)%3]
	produce(t, ctx, direct, topic, parts, 30, produced)
	waitUntil(t, ctx, func() bool { return len(last.Assigned()[topic]) == parts },
		func() string { return fmt.Sprintf("the last member has %v", last.Assigned()) })
	waitDelivered(t, ctx, got, produced, "after the crash, ")
	t.Logf("%d records delivered, %d of them twice", len(produced), got.duplicates())
}

// A Kafka consumer may be a member of a share: the group settles on a
// protocol both speak (range, the Java client's and librdkafka's first),
// the partitions are split between it and the API's member, and together
// they deliver every record.
func TestShareWithAKafkaConsumer(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	const topic, groupID, parts = "shared-mixed", "share-mixed", 4
	createTopic(t, ctx, env.Client(t), topic, parts)
	got := newCollector()
	s := startMembers(t, []*mesh.Mesh{env.Node.Mesh()}, shareOptions(groupID, topic), got)[0]
	consumer := env.Client(t, kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic), kgo.Balancers(kgo.RangeBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.HeartbeatInterval(100*time.Millisecond))
	waitUntil(t, ctx, func() bool { return len(s.Assigned()[topic]) == parts/2 },
		func() string { return fmt.Sprintf("the API's member has %v", s.Assigned()) })

	produced := map[[2]int64]bool{}
	produce(t, ctx, env.DirectClient(t, manualPartitioner()), topic, parts, 25, produced)
	mine := s.Assigned()[topic]
	for got.missing(produced) > 0 {
		pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		fetches := consumer.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			t.Fatalf("%d records not delivered", got.missing(produced))
		}
		if err := fetches.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the Kafka consumer: %v (%d records not delivered)", err, got.missing(produced))
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if slices.Contains(mine, r.Partition) {
				t.Errorf("the Kafka consumer got partition %d, which the API's member has", r.Partition)
			}
			got.mu.Lock()
			got.seen[[2]int64{int64(r.Partition), r.Offset}]++
			got.mu.Unlock()
		})
	}
	d, err := kadm.NewClient(env.Client(t)).DescribeGroups(ctx, groupID)
	if err != nil {
		t.Fatal(err)
	}
	if g := d[groupID]; g.Protocol != "range" || len(g.Members) != 2 {
		t.Fatalf("the group: protocol %q, %d members", g.Protocol, len(g.Members))
	}
}
