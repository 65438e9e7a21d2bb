package mesh

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/actors/group"
	"github.com/meshka/meshka/upstream"
)

// ShareOptions say what a member of a share reads and how it takes part.
type ShareOptions struct {
	// Group names the share. It is a Kafka consumer group: meshka's
	// group actor coordinates it (Kafka tools see it through any node),
	// and its members' offsets are committed upstream under this id.
	Group  string
	Topics []string
	Filter Filter // run in the fan-out, as for a Subscription
	// Start is where a partition with no committed offset starts, or
	// one whose committed offset the log no longer holds: Latest (the
	// zero Start), Earliest or AtTime. Given offsets are not a start for
	// a share; AtOffsets counts as Latest. Latest is the end of each
	// partition when Share is called, not when the group assigns it: a
	// record written after Share returned reaches the share even if the
	// rebalance is still under way.
	Start Start
	// Queue bounds the records delivered but not yet taken by Next
	// (1024 when 0). A member whose queue is full is paused: it reads on
	// alone at its own pace, as a Pause subscriber does.
	Queue int
	// SessionTimeout is how long the group waits for a member that
	// stopped heartbeating, its node gone say, before it moves the
	// member's partitions (10 s when 0). It must be within the node's
	// groups.min_session_timeout and groups.max_session_timeout.
	SessionTimeout time.Duration
	// RebalanceTimeout bounds how long a rebalance waits for members to
	// rejoin (30 s when 0).
	RebalanceTimeout time.Duration
	// HeartbeatInterval (3 s, or a third of SessionTimeout if less, when
	// 0) is also how soon a member learns of a rebalance.
	HeartbeatInterval time.Duration
	// CommitInterval is how often the member commits its positions (5 s
	// when 0; negative: only Commit and a rebalance or Close commit).
	CommitInterval time.Duration
	// Acknowledge says which records are done: when false, every record
	// Next returned; when true, only the records passed to Ack (a binding
	// that must hear from its client first, an MQTT PUBACK say).
	Acknowledge bool
	// ClientID is the member's client id in DescribeGroups ("meshka"
	// when empty).
	ClientID string
}

func (o *ShareOptions) withDefaults() error {
	if o.Group == "" {
		return errors.New("mesh: share: no group")
	}
	if len(o.Topics) == 0 {
		return fmt.Errorf("mesh: share %q: no topics", o.Group)
	}
	for _, t := range o.Topics {
		if t == "" {
			return fmt.Errorf("mesh: share %q: an empty topic name", o.Group)
		}
	}
	if err := o.Filter.Validate(); err != nil {
		return fmt.Errorf("mesh: share %q: %w", o.Group, err)
	}
	o.Topics = slices.Compact(slices.Sorted(slices.Values(o.Topics)))
	if o.Start.at == 0 || o.Start.offsets != nil {
		o.Start = Latest()
	}
	if o.Queue <= 0 {
		o.Queue = defaultQueue
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 10 * time.Second
	}
	if o.RebalanceTimeout <= 0 {
		o.RebalanceTimeout = 30 * time.Second
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = min(3*time.Second, o.SessionTimeout/3)
	}
	if o.CommitInterval == 0 {
		o.CommitInterval = 5 * time.Second
	}
	if o.ClientID == "" {
		o.ClientID = "meshka"
	}
	return nil
}

// Share is one member of a share: it delivers the records of the
// partitions the group assigned it, in offset order per partition, and
// commits how far it got. When members join or leave, the group
// rebalances: each member commits, stops delivering, and goes on with its
// new partitions from their committed offsets. So a record is delivered
// at least once across the share; one may come again after a rebalance
// or a member's crash, from the last commit on.
//
// Next, Ack and Commit are for one goroutine at a time; Assigned and Close
// may be called from any.
type Share struct {
	m        *Mesh
	o        ShareOptions
	identity string
	cancel   context.CancelFunc // ends the member's loop
	stopped  chan struct{}      // closed once the loop has left the group
	commits  chan chan error    // Commit's asks, for the loop
	// ends is, with Start Latest, each partition's end offset when Share
	// was called: where one with nothing committed starts. Read-only.
	ends map[topicPartition]int64

	mu      sync.Mutex
	gen     *shareGen     // the generation delivering; nil between them
	changed chan struct{} // closed, and replaced, when gen changes
	err     error         // why the share ended; set before done is closed
	done    chan struct{}
	once    sync.Once
}

// shareGen is one generation's assignment and what was delivered of it.
type shareGen struct {
	id       int32
	assigned map[string][]int32
	ch       chan Record // its subscriptions deliver here
	subs     []*Subscription
	started  bool // its subscriptions are running

	positions map[topicPartition]int64 // the offset after the last record done; Share.mu guards it
	committed map[topicPartition]int64 // the loop's
}

type topicPartition struct {
	topic     string
	partition int32
}

// Share joins the share named by o.Group as a new member and returns at
// once; the member is assigned partitions, and Next delivers from them,
// once the group's rebalance completes.
func (m *Mesh) Share(o ShareOptions) (*Share, error) {
	if err := o.withDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(m.ctx)
	s := &Share{m: m, o: o, identity: group.Identity(m.upstreamName, o.Group), cancel: cancel,
		stopped: make(chan struct{}), commits: make(chan chan error),
		changed: make(chan struct{}), done: make(chan struct{})}
	if o.Start.at == upstream.OffsetLatest {
		s.ends = m.ends(ctx, o.Topics)
	}
	if !m.goroutine(func() { s.run(ctx) }) {
		cancel()
		return nil, ErrClosed
	}
	return s, nil
}

// endsTimeout bounds how long Share waits for upstream's end offsets.
const endsTimeout = 10 * time.Second

// ends is the end offset of every partition of topics, as far as
// upstream answers within endsTimeout: a topic that does not exist yet,
// or that upstream cannot describe now, is left out (its partitions then
// start at their end when assigned).
func (m *Mesh) ends(ctx context.Context, topics []string) map[topicPartition]int64 {
	ctx, cancel := context.WithTimeout(ctx, endsTimeout)
	defer cancel()
	out := map[topicPartition]int64{}
	for _, t := range topics {
		offs, err := m.Offsets(ctx, t, Latest())
		if err != nil {
			m.log.Debug("share starts without the end offsets of a topic", "topic", t, "err", err)
			continue
		}
		for p, off := range offs {
			out[topicPartition{t, p}] = off
		}
	}
	return out
}

// Next returns the next record of the member's partitions, waiting for
// one until ctx ends. Records queued when a rebalance takes their
// partition away are dropped: the partition's next owner delivers them.
// Once the share has ended it returns why: ErrClosed after Close, or an
// error the group or a partition gave (the topic deleted, the group's
// protocol not the one its other members speak, say).
func (s *Share) Next(ctx context.Context) (Record, error) {
	for {
		s.mu.Lock()
		g, changed := s.gen, s.changed
		s.mu.Unlock()
		select {
		case <-s.done:
			return Record{}, s.err
		default:
		}
		var ch chan Record
		if g != nil {
			ch = g.ch
		}
		select {
		case r := <-ch:
			s.mu.Lock()
			current := s.gen == g
			if current && !s.o.Acknowledge {
				g.positions[topicPartition{r.Topic, r.Partition}] = r.Offset + 1
			}
			s.mu.Unlock()
			if current {
				return r, nil
			}
		case <-changed:
		case <-s.done:
			return Record{}, s.err
		case <-ctx.Done():
			return Record{}, ctx.Err()
		}
	}
}

// Ack marks records Next returned as done, for a share with Acknowledge
// set: the next commit stores, per partition, the offset after the latest
// record acknowledged (so acknowledging a record also counts the ones
// before it in its partition). Records of a partition the member no
// longer has are ignored: their new owner delivers them again.
func (s *Share) Ack(recs ...Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gen
	if g == nil {
		return
	}
	for _, r := range recs {
		k := topicPartition{r.Topic, r.Partition}
		if at, ok := g.positions[k]; ok && r.Offset >= at {
			g.positions[k] = r.Offset + 1
		}
	}
}

// Commit stores the member's positions upstream now, waiting until ctx
// ends for the answer. Between generations there is nothing to commit:
// it waits for the next one.
func (s *Share) Commit(ctx context.Context) error {
	ask := make(chan error, 1)
	select {
	case s.commits <- ask:
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-ask:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Assigned is the member's partitions per topic in the current
// generation; none between generations.
func (s *Share) Assigned() map[string][]int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == nil {
		return nil
	}
	out := make(map[string][]int32, len(s.gen.assigned))
	for t, ps := range s.gen.assigned {
		out[t] = slices.Clone(ps)
	}
	return out
}

// Close commits what the member has done, leaves the share (the others
// rebalance at once, not after a session timeout) and ends it; Next then
// answers ErrClosed. It waits for the leave, a few seconds at most.
func (s *Share) Close() {
	s.cancel()
	<-s.stopped
	s.end(ErrClosed)
}

// end ends the share with err, once.
func (s *Share) end(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
	})
}

// setGen makes g (nil: none) the generation Next delivers from, and
// returns what the previous one had done.
func (s *Share) setGen(g *shareGen) (prev *shareGen, positions map[topicPartition]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev = s.gen
	if prev != nil {
		positions = maps.Clone(prev.positions)
	}
	s.gen = g
	close(s.changed)
	s.changed = make(chan struct{})
	return prev, positions
}

// balancers are the assignment protocols a member offers, preferred
// first: sticky keeps a member's partitions across rebalances where it
// can; range and roundrobin let Kafka consumers that offer only those
// (librdkafka's and the Java client's defaults) join a share too.
func balancers() []kgo.GroupBalancer {
	return []kgo.GroupBalancer{kgo.StickyBalancer(), kgo.RangeBalancer(), kgo.RoundRobinBalancer()}
}
