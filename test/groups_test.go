package test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testenv"
)

// Group session settings for every group test: 6 s is the smallest session
// a broker accepts by default, and a 500 ms heartbeat makes members notice a
// rebalance quickly, so the tests spend their time on behaviour, not waits.
const (
	groupSession   = 6 * time.Second
	groupHeartbeat = 500 * time.Millisecond
)

// seqLog records which sequence numbers (record values) were consumed, how
// often and by whom, shared by the members of one group.
type seqLog struct {
	mu    sync.Mutex
	count map[int]int
	at    map[int][2]int64 // partition and offset the value was read at
	dups  []int
	by    map[string]int
	bad   []string
}

func newSeqLog() *seqLog {
	return &seqLog{count: map[int]int{}, at: map[int][2]int64{}, by: map[string]int{}}
}

func (s *seqLog) add(who string, r *kgo.Record) {
	s.addValue(who, r.Value, r.Partition, r.Offset)
}

// addValue is add for any client's record: its value, partition and offset.
// A value is a decimal number (produceSeq) or an 8-byte big-endian one
// (seqProducer).
func (s *seqLog) addValue(who string, value []byte, partition int32, offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := strconv.Atoi(string(value))
	if err != nil && len(value) == 8 {
		v, err = int(binary.BigEndian.Uint64(value)), nil
	}
	if err != nil {
		s.bad = append(s.bad, fmt.Sprintf("%d@%d: value %q", partition, offset, value))
		return
	}
	if pl, ok := s.at[v]; ok && (pl[0] != int64(partition) || pl[1] != offset) {
		s.bad = append(s.bad, fmt.Sprintf("value %d read at %d/%d and at %d/%d", v, pl[0], pl[1], partition, offset))
	}
	s.at[v] = [2]int64{int64(partition), offset}
	s.count[v]++
	if s.count[v] > 1 {
		s.dups = append(s.dups, v)
	}
	s.by[who]++
}

func (s *seqLog) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.count)
}

func (s *seqLog) consumedBy(who string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.by[who]
}

// check fails unless exactly the values 0..n-1 were consumed; it returns the
// values consumed more than once, which at-least-once delivery allows.
func (s *seqLog) check(t *testing.T, n int) []int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bad {
		t.Errorf("bad record: %s", b)
	}
	missing := 0
	for i := 0; i < n; i++ {
		if s.count[i] == 0 {
			if missing < 10 {
				t.Errorf("record %d was never consumed", i)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d records never consumed", missing, n)
	}
	for v := range s.count {
		if v < 0 || v >= n {
			t.Errorf("consumed value %d, never produced (0..%d)", v, n-1)
		}
	}
	t.Logf("consumed %d distinct records; per member %v; %d duplicates", len(s.count), s.by, len(s.dups))
	return slices.Clone(s.dups)
}

// member is one franz-go group consumer that tracks what it owns and, when
// consuming, commits as a correct application does: after processing each
// poll, and in OnPartitionsRevoked before it loses partitions. Rebalances
// are blocked while a poll is processed so commits never race them.
type member struct {
	name string
	cl   *kgo.Client

	mu         sync.Mutex
	owned      map[int32]bool
	assigns    int // assignments that gave partitions
	revokes    int // revocations that took partitions
	losts      int
	revokeErrs []error
	commitErrs []error
	fetchErrs  []error

	cancel context.CancelFunc
	done   chan struct{}
	closed atomic.Bool
}

func newMember(t *testing.T, seeds []string, name, group, topic string, extra ...kgo.Opt) *member {
	t.Helper()
	m := &member{name: name, owned: map[int32]bool{}}
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID(name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		fromStart(),
		kgo.SessionTimeout(groupSession),
		kgo.HeartbeatInterval(groupHeartbeat),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if len(a[topic]) > 0 {
				m.assigns++
			}
			for _, p := range a[topic] {
				m.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			// What was processed is committed before the partitions
			// go, so their next owner starts where this one stopped.
			err := cl.CommitUncommittedOffsets(ctx)
			m.mu.Lock()
			defer m.mu.Unlock()
			if err != nil {
				m.revokeErrs = append(m.revokeErrs, err)
			}
			if len(r[topic]) > 0 {
				m.revokes++
			}
			for _, p := range r[topic] {
				delete(m.owned, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			// Lost partitions may already be someone else's: no commit.
			m.mu.Lock()
			defer m.mu.Unlock()
			m.losts++
			for _, p := range l[topic] {
				delete(m.owned, p)
			}
		}),
	}
	if os.Getenv("MESHKA_TEST_KGO_LOG") != "" {
		// The client's own view of the group, for debugging a failure.
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, func() string { return name + " " })))
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	t.Cleanup(m.close)
	return m
}

// ownedNow is the sorted set of partitions the member owns.
func (m *member) ownedNow() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.owned))
}

func (m *member) counts() (assigns, revokes, losts int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.assigns, m.revokes, m.losts
}

// consume polls, records and commits until stop. pace is a pause per record
// that keeps a consumer busy long enough for the test to act mid-stream.
func (m *member) consume(seen *seqLog, pace time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	go func() {
		defer close(m.done)
		for {
			fs := m.cl.PollRecords(ctx, 100)
			fs.EachError(func(topic string, p int32, err error) {
				if !errors.Is(err, context.Canceled) && !errors.Is(err, kgo.ErrClientClosed) {
					m.mu.Lock()
					m.fetchErrs = append(m.fetchErrs, fmt.Errorf("%s/%d: %w", topic, p, err))
					m.mu.Unlock()
				}
			})
			fs.EachRecord(func(r *kgo.Record) {
				seen.add(m.name, r)
				if pace > 0 {
					time.Sleep(pace)
				}
			})
			cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := m.cl.CommitUncommittedOffsets(cctx)
			ccancel()
			if err != nil {
				m.mu.Lock()
				m.commitErrs = append(m.commitErrs, err)
				m.mu.Unlock()
			}
			m.cl.AllowRebalance()
			if ctx.Err() != nil {
				return
			}
		}
	}()
}

// stop ends consumption after a last commit of everything processed.
func (m *member) stop(ctx context.Context) error {
	m.cancel()
	select {
	case <-m.done:
	case <-ctx.Done():
		return fmt.Errorf("%s did not stop: %w", m.name, ctx.Err())
	}
	return m.cl.CommitUncommittedOffsets(ctx)
}

// close leaves the group (dynamic members) and closes the client once.
func (m *member) close() {
	if m.closed.CompareAndSwap(false, true) {
		m.cl.CloseAllowingRebalance()
	}
}

// errs fails the test on any revoke-time commit, loop commit or fetch error.
func (m *member) errs(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, err := range m.revokeErrs {
		t.Errorf("%s: commit before revocation failed: %v", m.name, err)
	}
	for _, err := range m.commitErrs {
		t.Errorf("%s: commit after processing failed: %v", m.name, err)
	}
	for _, err := range m.fetchErrs {
		t.Errorf("%s: fetch error: %v", m.name, err)
	}
}

// severableDialer dials normally until sever, which closes every connection
// it made and refuses new ones: a client behind it goes silent, as one on a
// dead host does, without sending a LeaveGroup.
type severableDialer struct {
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func (d *severableDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, errors.New("severed by test")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *severableDialer) sever() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.conns {
		c.Close()
	}
}

// produceSeq writes the values from..to-1 through cl, value i to partition
// i%parts, in synchronous batches of batch records so each batch is its own
// record batch. pace is a pause between batches.
func produceSeq(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, parts int32, from, to, batch int, pace time.Duration) {
	t.Helper()
	for i := from; i < to; {
		var rs []*kgo.Record
		for ; i < to && len(rs) < batch; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i) % parts, Value: []byte(strconv.Itoa(i))})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce %d..%d: %v", i-len(rs), i-1, err)
		}
		if pace > 0 {
			time.Sleep(pace)
		}
	}
}

func manualProducer(t *testing.T, env *testenv.Env) *kgo.Client {
	return env.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
}

// committed is a group's committed offset per partition of topic, read
// through cl: meshka, or upstream directly.
func committed(t *testing.T, ctx context.Context, cl *kgo.Client, group, topic string) map[int32]int64 {
	t.Helper()
	out, err := fetchCommitted(ctx, cl, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fetchCommitted(ctx context.Context, cl *kgo.Client, group, topic string) (map[int32]int64, error) {
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of %s: %w", group, err)
	}
	out := map[int32]int64{}
	for p, o := range resp[topic] {
		out[p] = o.At
	}
	return out, nil
}

// endOffsets is the high watermark of every partition of topic.
func endOffsets(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) map[int32]int64 {
	t.Helper()
	l, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	if err := l.Error(); err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	for p, o := range l[topic] {
		out[p] = o.Offset
	}
	return out
}

// checkCommittedAtEnd fails unless the group's offsets, read through meshka,
// equal the end offsets of every partition, and upstream holds the same
// offsets under the same group id.
func checkCommittedAtEnd(t *testing.T, ctx context.Context, env *testenv.Env, group, topic string) {
	t.Helper()
	cl := env.Client(t)
	end := endOffsets(t, ctx, cl, topic)
	got := committed(t, ctx, cl, group, topic)
	if !maps.Equal(got, end) {
		t.Errorf("group %s: committed offsets %v, want the end offsets %v", group, got, end)
	}
	direct := committed(t, ctx, env.DirectClient(t), group, topic)
	if !maps.Equal(direct, got) {
		t.Errorf("group %s: upstream holds %v, meshka reports %v", group, direct, got)
	}
}

func describeGroup(t *testing.T, ctx context.Context, cl *kgo.Client, group string) kadm.DescribedGroup {
	t.Helper()
	ds, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		t.Fatalf("describe %s: %v", group, err)
	}
	d, ok := ds[group]
	if !ok {
		t.Fatalf("describe %s: group missing from %v", group, slices.Collect(maps.Keys(ds)))
	}
	if d.Err != nil {
		t.Fatalf("describe %s: %v", group, d.Err)
	}
	return d
}

// waitFor polls cond until it holds, failing when ctx ends first. Only the
// context bounds the wait; nothing asserts how long it took.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitStable waits until DescribeGroups shows the group Stable with exactly
// members members and returns that description.
func waitStable(t *testing.T, ctx context.Context, cl *kgo.Client, group string, members int) kadm.DescribedGroup {
	t.Helper()
	var d kadm.DescribedGroup
	waitFor(t, ctx, fmt.Sprintf("%s Stable with %d members", group, members), func() bool {
		d = describeGroup(t, ctx, cl, group)
		return d.State == "Stable" && len(d.Members) == members
	})
	return d
}

// offsetSampler reads a group's committed offsets over and
// over while the group works, and records any partition whose offset went
// backwards between two reads.
type offsetSampler struct {
	samples   int
	failures  int
	lastErr   error
	backwards []string
	stopc     chan struct{}
	done      chan struct{}
}

func sampleOffsets(t *testing.T, env *testenv.Env, group, topic string) *offsetSampler {
	return sampleOffsetsOf(t, env.Client(t), group, topic)
}

// sampleOffsetsOf is sampleOffsets reading through cl: a node, or upstream
// directly.
func sampleOffsetsOf(t *testing.T, cl *kgo.Client, group, topic string) *offsetSampler {
	s := &offsetSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	adm := kadm.NewClient(cl)
	// OffsetFetch v10 answers with topic ids, which kgo maps to names
	// from its metadata; loading the topic by name first keeps this
	// sampler independent of lookups by id (TestGroupDescribeListDelete
	// covers those with a fresh client).
	endOffsets(t, timeout(t, 10*time.Second), cl, topic)
	go func() {
		defer close(s.done)
		last := map[int32]int64{}
		for {
			select {
			case <-s.stopc:
				return
			case <-time.After(200 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			resp, err := adm.FetchOffsets(ctx, group)
			cancel()
			if err == nil {
				err = resp.Error()
			}
			if errors.Is(err, kerr.GroupIDNotFound) && s.samples == 0 {
				// Straight upstream, a group with nothing committed yet
				// is not found (kfake answers so; meshka's edge answers
				// offset -1, as a Kafka broker does).
				continue
			}
			if err != nil {
				s.failures++
				s.lastErr = err
				continue
			}
			s.samples++
			for p, o := range resp[topic] {
				if o.At < last[p] {
					s.backwards = append(s.backwards, fmt.Sprintf("partition %d: %d after %d", p, o.At, last[p]))
				}
				last[p] = o.At
			}
		}
	}()
	return s
}

func (s *offsetSampler) stop(t *testing.T) {
	t.Helper()
	close(s.stopc)
	<-s.done
	for _, b := range s.backwards {
		t.Errorf("committed offset went backwards: %s", b)
	}
	if s.failures > 0 {
		t.Errorf("%d reads of committed offsets failed, last: %v", s.failures, s.lastErr)
	}
	if s.samples < 3 {
		t.Errorf("only %d samples of committed offsets were read during the run", s.samples)
	}
	t.Logf("committed offsets sampled %d times", s.samples)
}

// Three members of one group join and leave while a producer writes, with
// each balancer franz-go offers: every record is consumed, committed offsets
// only move forward, and at the end they equal the end offsets, in meshka
// and upstream alike.
func TestGroupBalancers(t *testing.T) {
	env := testenv.Start(t)
	balancers := []struct {
		name string
		b    kgo.GroupBalancer
	}{
		{"range", kgo.RangeBalancer()},
		{"roundrobin", kgo.RoundRobinBalancer()},
		{"sticky", kgo.StickyBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	}
	for _, bal := range balancers {
		t.Run(bal.name, func(t *testing.T) {
			ctx := timeout(t, 60*time.Second)
			topic, group := "bal-"+bal.name, "bal-grp-"+bal.name
			const parts = 6
			createTopic(t, ctx, env.Client(t), topic, parts, nil)
			seeds := []string{env.Addr()}
			seen := newSeqLog()
			prod := manualProducer(t, env)
			sampler := sampleOffsets(t, env, group, topic)

			newM := func(name string) *member {
				m := newMember(t, seeds, name, group, topic, kgo.Balancers(bal.b))
				m.consume(seen, 0)
				return m
			}
			// Records flow throughout (30 every 20 ms) so every
			// rebalance happens with partitions being consumed.
			const batch, pace = 30, 20 * time.Millisecond
			n := 0
			c1 := newM("c1")
			produceSeq(t, ctx, prod, topic, parts, n, n+1000, batch, pace)
			n += 1000

			c2, c3 := newM("c2"), newM("c3")
			// Keep producing until both newcomers took part: each
			// consumed records of its own.
			for n < 2000 || seen.consumedBy("c2") == 0 || seen.consumedBy("c3") == 0 {
				if ctx.Err() != nil {
					t.Fatalf("c2 and c3 consumed %d and %d records after %d were produced", seen.consumedBy("c2"), seen.consumedBy("c3"), n)
				}
				produceSeq(t, ctx, prod, topic, parts, n, n+batch, batch, pace)
				n += batch
			}

			closed := make(chan error, 1)
			go func() {
				err := c2.stop(ctx)
				c2.close()
				closed <- err
			}()
			produceSeq(t, ctx, prod, topic, parts, n, n+1000, batch, pace)
			n += 1000
			if err := <-closed; err != nil {
				t.Errorf("c2: last commit: %v", err)
			}

			waitFor(t, ctx, fmt.Sprintf("all %d records consumed", n), func() bool { return seen.distinct() == n })
			for _, m := range []*member{c1, c3} {
				if err := m.stop(ctx); err != nil {
					t.Errorf("%s: last commit: %v", m.name, err)
				}
			}
			c1.close()
			c3.close()
			sampler.stop(t)

			dups := seen.check(t, n)
			if len(dups) > 0 {
				t.Logf("duplicates (allowed around rebalances): %d, first %v", len(dups), dups[:min(len(dups), 10)])
			}
			for _, m := range []*member{c1, c2, c3} {
				m.errs(t)
			}
			checkCommittedAtEnd(t, ctx, env, group, topic)
		})
	}
}

// A static member that restarts within its session timeout gets its
// partitions back without a rebalance: the generation stays, the other
// member is not revoked, and the old member id is fenced. Kafka does this
// for the group's leader too (JoinGroup v9 tells the leader to skip the
// assignment, KIP-814), so both are restarted in turn.
func TestGroupStaticMembership(t *testing.T) {
	env := testenv.Start(t)
	for _, restart := range []string{"follower", "leader"} {
		t.Run(restart, func(t *testing.T) {
			ctx := timeout(t, 30*time.Second)
			topic, group := "static-"+restart, "static-grp-"+restart
			createTopic(t, ctx, env.Client(t), topic, 4, nil)
			seeds := []string{env.Addr()}
			// An eager balancer: franz-go then sends no LeaveGroup
			// for a static member on Close (it only does after a
			// cooperative revocation).
			static := func(id string) *member {
				return newMember(t, seeds, "static-"+id, group, topic, kgo.InstanceID(id), kgo.Balancers(kgo.RangeBalancer()))
			}
			// The first member to join leads the group, and stays
			// leader through the rebalance that brings in the other.
			leader := static("leader")
			waitFor(t, ctx, "the leader to own all 4 partitions", func() bool { return len(leader.ownedNow()) == 4 })
			follower := static("follower")
			waitFor(t, ctx, "two partitions each", func() bool { return len(leader.ownedNow()) == 2 && len(follower.ownedNow()) == 2 })
			admCl := env.Client(t)
			waitStable(t, ctx, admCl, group, 2)
			gone, stays := follower, leader
			if restart == "leader" {
				gone, stays = leader, follower
			}
			goneMember, gen := gone.cl.GroupMetadata()
			if stayMember, stayGen := stays.cl.GroupMetadata(); stayGen != gen || stayMember == goneMember {
				t.Fatalf("members %s (generation %d) and %s (generation %d): want one generation", goneMember, gen, stayMember, stayGen)
			}
			goneOwned := gone.ownedNow()
			_, staysRevokes, _ := stays.counts()

			gone.close()
			// No LeaveGroup: it is still a member until its session
			// expires.
			d := describeGroup(t, ctx, admCl, group)
			if len(d.Members) != 2 || !hasInstance(d, restart, goneMember) {
				t.Fatalf("after closing static member %s: %s with %d members, want it (%s) still in", restart, d.State, len(d.Members), goneMember)
			}

			back := static(restart)
			waitFor(t, ctx, "the restarted member to be assigned", func() bool { return len(back.ownedNow()) > 0 })
			if got := back.ownedNow(); !slices.Equal(got, goneOwned) {
				t.Errorf("restarted %s owns %v, before it owned %v", restart, got, goneOwned)
			}
			backMember, backGen := back.cl.GroupMetadata()
			if backGen != gen {
				t.Errorf("restarted %s joined generation %d, want %d unchanged", restart, backGen, gen)
			}
			if backMember == goneMember {
				t.Errorf("restarted %s kept member id %s; the old one must be replaced", restart, goneMember)
			}
			if _, g := stays.cl.GroupMetadata(); g != gen {
				t.Errorf("the other member is in generation %d, want %d unchanged", g, gen)
			}
			if _, revokes, _ := stays.counts(); revokes != staysRevokes {
				t.Errorf("the other member was revoked %d times during the restart", revokes-staysRevokes)
			}
			if got := stays.ownedNow(); len(got) != 2 {
				t.Errorf("the other member owns %v after the restart, want its 2 partitions", got)
			}
			d = describeGroup(t, ctx, admCl, group)
			if d.State != "Stable" || len(d.Members) != 2 || !hasInstance(d, restart, backMember) {
				t.Errorf("after the restart: %s with %d members, want Stable with %s as %s", d.State, len(d.Members), restart, backMember)
			}

			// The replaced member id is fenced, as Kafka fences a
			// static member's old incarnation.
			hb := kmsg.NewPtrHeartbeatRequest()
			hb.Group, hb.Generation, hb.MemberID, hb.InstanceID = group, gen, goneMember, kmsg.StringPtr(restart)
			kresp, err := admCl.Request(ctx, hb)
			if err != nil {
				t.Fatal(err)
			}
			if code := kresp.(*kmsg.HeartbeatResponse).ErrorCode; code != kerr.FencedInstanceID.Code {
				t.Errorf("heartbeat as the old member id: error %d (%v), want FENCED_INSTANCE_ID (%d)", code, kerr.ErrorForCode(code), kerr.FencedInstanceID.Code)
			}
		})
	}
}

func hasInstance(d kadm.DescribedGroup, instance, memberID string) bool {
	for _, m := range d.Members {
		if m.InstanceID != nil && *m.InstanceID == instance && m.MemberID == memberID {
			return true
		}
	}
	return false
}

// A member that stops heartbeating (its connections cut, no LeaveGroup) is
// expelled once its session times out, and the other member gets all
// partitions.
func TestGroupSessionExpiry(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 40*time.Second)
	const topic, group = "expiry", "expiry-grp"
	createTopic(t, ctx, env.Client(t), topic, 4, nil)
	seeds := []string{env.Addr()}
	c1 := newMember(t, seeds, "live", group, topic, kgo.Balancers(kgo.RangeBalancer()))
	var dialer severableDialer
	c2 := newMember(t, seeds, "doomed", group, topic, kgo.Balancers(kgo.RangeBalancer()), kgo.Dialer(dialer.dial))
	// The doomed client cannot reach anything at cleanup; leaving with a
	// canceled context makes its Close immediate.
	t.Cleanup(func() {
		cctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = c2.cl.LeaveGroupContext(cctx)
	})
	admCl := env.Client(t)
	waitFor(t, ctx, "two partitions each", func() bool { return len(c1.ownedNow()) == 2 && len(c2.ownedNow()) == 2 })
	waitStable(t, ctx, admCl, group, 2)
	c1Member, gen := c1.cl.GroupMetadata()

	dialer.sever()
	waitFor(t, ctx, "the live member to own all 4 partitions", func() bool { return len(c1.ownedNow()) == 4 })
	d := waitStable(t, ctx, admCl, group, 1)
	if d.Members[0].MemberID != c1Member {
		t.Errorf("the remaining member is %s, want %s", d.Members[0].MemberID, c1Member)
	}
	if _, g := c1.cl.GroupMetadata(); g <= gen {
		t.Errorf("generation %d after the expiry, want above %d", g, gen)
	}
	if _, _, losts := c1.counts(); losts != 0 {
		t.Errorf("the live member lost partitions %d times", losts)
	}
}

// meshka restarts while a group consumes: the same clients reconnect,
// rejoin and resume from the offsets committed upstream, so no record is
// skipped and only records after the last commit before the restart can be
// read twice.
func TestGroupResumeAfterRestart(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 60*time.Second)
	const topic, group, parts, n = "restart", "restart-grp", 3, 3000
	createTopic(t, ctx, env.Client(t), topic, parts, nil)
	// Batches of 15 and small fetches keep little buffered in the
	// clients, so consumption really spans the restart.
	produceSeq(t, ctx, manualProducer(t, env), topic, parts, 0, n, 15, 0)
	seen := newSeqLog()
	seeds := []string{env.Addr()}
	small := []kgo.Opt{kgo.FetchMaxBytes(256), kgo.FetchMaxPartitionBytes(256), kgo.Balancers(kgo.RangeBalancer())}
	c1 := newMember(t, seeds, "r1", group, topic, small...)
	c2 := newMember(t, seeds, "r2", group, topic, small...)
	// 2 ms per record: the 3,000 take the pair at least 3 s.
	c1.consume(seen, 2*time.Millisecond)
	c2.consume(seen, 2*time.Millisecond)

	waitFor(t, ctx, "a third of the records consumed", func() bool { return seen.distinct() >= n/3 })
	before := committed(t, ctx, env.DirectClient(t), group, topic)
	atRestart := seen.distinct()
	env.RestartNode(t)
	t.Logf("restarted meshka after %d records; committed upstream then: %v", atRestart, before)

	waitFor(t, ctx, fmt.Sprintf("all %d records consumed", n), func() bool { return seen.distinct() == n })
	if atRestart >= n {
		t.Fatalf("all records were consumed before the restart; the test proved nothing")
	}
	for _, m := range []*member{c1, c2} {
		if err := m.stop(ctx); err != nil {
			t.Errorf("%s: last commit: %v", m.name, err)
		}
	}
	c1.close()
	c2.close()

	dups := seen.check(t, n)
	seen.mu.Lock()
	for _, v := range dups {
		at := seen.at[v]
		if at[1] < before[int32(at[0])] {
			t.Errorf("record %d at %d/%d read twice though committed (%d) before the restart", v, at[0], at[1], before[int32(at[0])])
		}
	}
	seen.mu.Unlock()
	// Errors while meshka was down are expected; they are logged only.
	for _, m := range []*member{c1, c2} {
		m.mu.Lock()
		t.Logf("%s: %d commit errors, %d revoke-commit errors, %d fetch errors around the restart; first: %v", m.name,
			len(m.commitErrs), len(m.revokeErrs), len(m.fetchErrs), firstErr(m.commitErrs, m.revokeErrs, m.fetchErrs))
		m.mu.Unlock()
	}
	checkCommittedAtEnd(t, ctx, env, group, topic)
}

func firstErr(lists ...[]error) error {
	for _, l := range lists {
		if len(l) > 0 {
			return l[0]
		}
	}
	return nil
}

// DescribeGroups, ListGroups and DeleteGroups through meshka: a group is
// Stable with its members, Empty once they leave, can be deleted only then,
// and deleting it removes its offsets upstream.
func TestGroupDescribeListDelete(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 40*time.Second)
	const topic, group, parts = "admin-grp-topic", "admin-grp", 2
	cl := env.Client(t)
	adm := kadm.NewClient(cl)
	createTopic(t, ctx, cl, topic, parts, nil)
	produceSeq(t, ctx, manualProducer(t, env), topic, parts, 0, 10, 10, 0)
	seen := newSeqLog()
	seeds := []string{env.Addr()}
	m1 := newMember(t, seeds, "adm-1", group, topic, kgo.Balancers(kgo.RangeBalancer()))
	m2 := newMember(t, seeds, "adm-2", group, topic, kgo.Balancers(kgo.RangeBalancer()))
	waitFor(t, ctx, "one partition each", func() bool { return len(m1.ownedNow()) == 1 && len(m2.ownedNow()) == 1 })
	m1.consume(seen, 0)
	m2.consume(seen, 0)
	waitFor(t, ctx, "10 records consumed", func() bool { return seen.distinct() == 10 })
	for _, m := range []*member{m1, m2} {
		if err := m.stop(ctx); err != nil {
			t.Fatalf("%s: commit: %v", m.name, err)
		}
	}

	d := waitStable(t, ctx, cl, group, 2)
	if d.ProtocolType != "consumer" || d.Protocol != "range" {
		t.Errorf("protocol %s/%s, want consumer/range", d.ProtocolType, d.Protocol)
	}
	clients := map[string]bool{}
	for _, m := range d.Members {
		clients[m.ClientID] = true
		c, ok := m.Assigned.AsConsumer()
		if !ok || len(c.Topics) != 1 || c.Topics[0].Topic != topic || len(c.Topics[0].Partitions) != 1 {
			t.Errorf("member %s (%s) assigned %+v, want one partition of %s", m.MemberID, m.ClientID, c, topic)
		}
	}
	if !clients["adm-1"] || !clients["adm-2"] {
		t.Errorf("members' client ids %v, want adm-1 and adm-2", clients)
	}
	if got := d.AssignedPartitions().Sorted(); len(got) != 1 || !slices.Equal(got[0].Partitions, []int32{0, 1}) {
		t.Errorf("assigned partitions %v, want %s [0 1]", got, topic)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := listed[group]; !ok || g.State != "Stable" || g.ProtocolType != "consumer" {
		t.Errorf("listed %+v (present %v), want Stable consumer group", g, ok)
	}

	del, err := adm.DeleteGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if err := del[group].Err; !errors.Is(err, kerr.NonEmptyGroup) {
		t.Errorf("deleting a group with members: %v, want NON_EMPTY_GROUP", err)
	}

	m1.close()
	m2.close()
	d = describeGroup(t, ctx, cl, group)
	if d.State != "Empty" || len(d.Members) != 0 {
		t.Errorf("after all members left: %s with %d members, want Empty with none", d.State, len(d.Members))
	}
	if listed, err := adm.ListGroups(ctx); err != nil {
		t.Fatal(err)
	} else if g, ok := listed[group]; !ok || g.State != "Empty" {
		t.Errorf("listed %+v (present %v), want Empty", g, ok)
	}
	want := map[int32]int64{0: 5, 1: 5}
	if got := committed(t, ctx, env.DirectClient(t), group, topic); !maps.Equal(got, want) {
		t.Fatalf("committed upstream before delete: %v, want %v", got, want)
	}
	// An operator's tool starts with no metadata: its FetchOffsets (v10,
	// topics by id) must still name the topic and give the offsets.
	if got, err := fetchCommitted(ctx, env.Client(t), group, topic); err != nil || !maps.Equal(got, want) {
		t.Errorf("committed offsets through meshka, fresh client: %v (%v), want %v", got, err, want)
	}

	del, err = adm.DeleteGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if err := del[group].Err; err != nil {
		t.Fatalf("deleting the empty group: %v", err)
	}
	// Upstream no longer knows the group at all, which kfake reports as
	// GROUP_ID_NOT_FOUND; either that or an empty answer means no offsets.
	for _, via := range []struct {
		name string
		cl   *kgo.Client
	}{{"upstream", env.DirectClient(t)}, {"meshka", cl}} {
		resp, err := kadm.NewClient(via.cl).FetchOffsets(ctx, group)
		if errors.Is(err, kerr.GroupIDNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("fetch offsets of the deleted group through %s: %v", via.name, err)
		}
		if len(resp[topic]) != 0 || resp.Error() != nil {
			t.Errorf("%s still reports offsets %v (error %v) after the group was deleted", via.name, resp[topic], resp.Error())
		}
	}
	if listed, err := adm.ListGroups(ctx); err != nil {
		t.Fatal(err)
	} else if g, ok := listed[group]; ok {
		t.Errorf("deleted group still listed: %+v", g)
	}
	seen.check(t, 10)
	m1.errs(t)
	m2.errs(t)
}
