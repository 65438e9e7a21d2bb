package mesh

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/records"
	"github.com/meshka/meshka/upstream"
)

// Acks is how much of upstream a produce waits for.
type Acks int8

const (
	// AcksAll waits for every in-sync replica upstream (Kafka's acks=all).
	AcksAll Acks = iota
	// AcksLeader waits for upstream's partition leader (acks=1).
	AcksLeader
	// AcksNone waits for nothing (acks=0): records are answered once
	// handed to the partition's actor, with offset -1.
	AcksNone
)

func (a Acks) kafka() int16 {
	switch a {
	case AcksLeader:
		return 1
	case AcksNone:
		return 0
	}
	return -1
}

// ProducerOptions configure a Producer.
type ProducerOptions struct {
	Acks        Acks
	Compression records.Codec // each batch's codec (none by default)
	// Linger is how long a partition's records wait for more before
	// their batch goes; 0 sends at once, and records that come while a
	// batch is on its way go together in the next.
	Linger time.Duration
	// BatchBytes bounds a batch's size as encoded before compression
	// (1,000,000 bytes when 0: under the 1 MiB Kafka's
	// max.message.bytes allows by default).
	BatchBytes int
	// MaxBuffered bounds the records given and not yet answered, over
	// every partition; Produce waits for room (10000 when 0).
	MaxBuffered int
}

// Producer writes records to topics through the mesh: it batches them per
// partition, and each batch goes to the partition's actor on whichever
// node owns it, which appends it upstream in the order given. Records of
// one partition are appended in the order Produce was called. Safe for
// concurrent use.
type Producer struct {
	m     *Mesh
	opts  ProducerOptions
	slots chan struct{} // one per record given and not answered
	wg    sync.WaitGroup

	mu     sync.Mutex
	lanes  map[hubKey]*lane
	sticky map[string]int32 // a topic's partition for records without a key
	counts map[string]topicCount
	closed bool
}

// topicCount is a topic's partition count as last looked up.
type topicCount struct {
	n  int32
	at time.Time
}

// countFresh is how long the producer trusts a topic's partition count.
const countFresh = 5 * time.Second

// lane is one partition's batching: at most one batch on its way.
type lane struct {
	p       *Producer
	key     hubKey
	mu      sync.Mutex
	waiting []produced
	bytes   int
	sending bool
	timer   *time.Timer
}

type produced struct {
	rec  Record
	done func(Record, error)
}

// produceRetries bounds how often a batch that never reached an actor
// (its owner moved on the way) is sent again.
const produceRetries = 3

// NewProducer returns a producer; Close it when done.
func (m *Mesh) NewProducer(o ProducerOptions) *Producer {
	if o.BatchBytes <= 0 {
		o.BatchBytes = 1_000_000
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = 10000
	}
	return &Producer{m: m, opts: o, slots: make(chan struct{}, o.MaxBuffered), lanes: map[hubKey]*lane{}, sticky: map[string]int32{},
		counts: map[string]topicCount{}}
}

// Produce hands rec to the producer, waiting while MaxBuffered records
// are unanswered, and returns; done, when not nil, gets the record as
// written (partition and offset set) or the error, once, from another
// goroutine. An error returned means the record was not taken.
func (p *Producer) Produce(ctx context.Context, rec Record, done func(Record, error)) error {
	l, err := p.take(ctx, &rec)
	if err != nil {
		return err
	}
	l.add(produced{rec: rec, done: done}, false)
	return nil
}

// take holds a slot for rec and finds its partition's lane.
func (p *Producer) take(ctx context.Context, rec *Record) (*lane, error) {
	if rec.Topic == "" {
		return nil, errors.New("mesh: produce: no topic")
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.m.ctx.Done():
		return nil, ErrClosed
	}
	part, err := p.partitionFor(ctx, rec)
	if err != nil {
		<-p.slots
		return nil, err
	}
	rec.Partition = part
	if rec.Timestamp.IsZero() {
		rec.Timestamp = time.Now()
	}
	l, err := p.lane(hubKey{rec.Topic, part})
	if err != nil {
		<-p.slots
		return nil, err
	}
	return l, nil
}

// ProduceSync produces recs and waits for every answer; it returns them as
// written, and the first error.
func (p *Producer) ProduceSync(ctx context.Context, recs ...Record) ([]Record, error) {
	if len(recs) == 1 {
		return p.produceOne(ctx, recs[0])
	}
	out := make([]Record, len(recs))
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	for i, r := range recs {
		wg.Add(1)
		if err := p.Produce(ctx, r, func(w Record, err error) { out[i], errs[i] = w, err; wg.Done() }); err != nil {
			wg.Done()
			errs[i] = err
		}
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// produceOne is ProduceSync of one record. When its partition has no
// batch on its way, the record's batch is sent from this goroutine, which
// waits for it anyway: one goroutine fewer to start and wake per batch.
// A batch sealed behind it still goes from a goroutine of its own.
func (p *Producer) produceOne(ctx context.Context, rec Record) ([]Record, error) {
	l, err := p.take(ctx, &rec)
	if err != nil {
		return nil, err
	}
	var ans struct {
		rec  Record
		err  error
		done chan struct{}
	}
	ans.done = make(chan struct{})
	batch := l.add(produced{rec: rec, done: func(w Record, err error) { ans.rec, ans.err = w, err; close(ans.done) }}, true)
	if batch != nil {
		l.send(batch)
	}
	<-ans.done
	if ans.err != nil {
		return nil, ans.err
	}
	return []Record{ans.rec}, nil
}

// Close waits until every record given has its answer, or ctx ends, and
// takes no more.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	lanes := make([]*lane, 0, len(p.lanes))
	for _, l := range p.lanes {
		lanes = append(lanes, l)
	}
	p.mu.Unlock()
	for _, l := range lanes {
		l.flush()
	}
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// partitionFor is the record's partition: its own, its key's, or the
// topic's sticky one for records without a key.
func (p *Producer) partitionFor(ctx context.Context, rec *Record) (int32, error) {
	n, err := p.partitions(ctx, rec.Topic)
	if err != nil {
		return 0, err
	}
	switch {
	case rec.Partition >= 0 && rec.Partition < n:
		return rec.Partition, nil
	case rec.Partition >= n:
		return 0, fmt.Errorf("mesh: produce to %q: no partition %d (the topic has %d)", rec.Topic, rec.Partition, n)
	case rec.Key != nil:
		return KeyPartition(rec.Key, n), nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.sticky[rec.Topic]
	if !ok || s >= n {
		s = int32(len(p.sticky)) % n
		p.sticky[rec.Topic] = s
	}
	return s, nil
}

// partitions is the topic's partition count, looked up at most once per
// countFresh: Produce is called per record.
func (p *Producer) partitions(ctx context.Context, topic string) (int32, error) {
	p.mu.Lock()
	c, ok := p.counts[topic]
	p.mu.Unlock()
	if ok && time.Since(c.at) < countFresh {
		return c.n, nil
	}
	n, err := p.m.Partitions(ctx, topic)
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	p.counts[topic] = topicCount{n: n, at: time.Now()}
	p.mu.Unlock()
	return n, nil
}

func (p *Producer) lane(k hubKey) (*lane, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	l := p.lanes[k]
	if l == nil {
		l = &lane{p: p, key: k}
		p.lanes[k] = l
	}
	p.wg.Add(1) // done when the record is answered
	return l, nil
}

// add queues r; a batch it seals is sent from a goroutine of its own, or
// returned to the caller to send (send) when inline is set.
func (l *lane) add(r produced, inline bool) []produced {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waiting = append(l.waiting, r)
	l.bytes += encodedSize(&r.rec)
	switch {
	case l.sending:
	case l.p.opts.Linger <= 0 || l.bytes >= l.p.opts.BatchBytes:
		if inline {
			return l.sealLocked()
		}
		l.sendLocked()
	case l.timer == nil:
		l.timer = time.AfterFunc(l.p.opts.Linger, l.flush)
	}
	return nil
}

// flush sends what waits unless a batch is on its way.
func (l *lane) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.sending && len(l.waiting) > 0 {
		l.sendLocked()
	}
}

// sealed moves the topic's partition for records without a key on when a
// batch of it is sealed, as Kafka's sticky partitioner does (KIP-480):
// records without a key fill one partition's batch at a time and spread
// over the partitions, and while one batch is on its way the next fills
// on another partition.
func (p *Producer) sealed(k hubKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.sticky[k.topic]; ok && s == k.partition {
		if c, ok := p.counts[k.topic]; ok && c.n > 1 {
			p.sticky[k.topic] = (s + 1) % c.n
		}
	}
}

// sendLocked seals the waiting records, up to BatchBytes, into one batch
// and sends it from a goroutine of its own.
func (l *lane) sendLocked() {
	batch := l.sealLocked()
	if !l.p.m.goroutine(func() { l.send(batch) }) {
		l.sending = false
		answerAll(l.p, batch, 0, ErrClosed)
	}
}

// sealLocked takes the waiting records, up to BatchBytes, as the batch to
// send next, and marks the lane sending.
func (l *lane) sealLocked() []produced {
	l.p.sealed(l.key)
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	n, size := 0, batchOverhead
	for n < len(l.waiting) && (n == 0 || size+encodedSize(&l.waiting[n].rec) <= l.p.opts.BatchBytes) {
		size += encodedSize(&l.waiting[n].rec)
		n++
	}
	size -= batchOverhead
	batch := l.waiting[:n:n]
	l.waiting = l.waiting[n:]
	l.bytes -= size
	l.sending = true
	return batch
}

// send writes one batch and answers its records, then sends the next.
func (l *lane) send(batch []produced) {
	base, err := l.write(batch)
	answerAll(l.p, batch, base, err)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sending = false
	if len(l.waiting) > 0 && (l.p.opts.Linger <= 0 || l.bytes >= l.p.opts.BatchBytes || l.timer == nil) {
		l.sendLocked()
	}
}

// write sends the batch to the partition's actor and returns the offset
// upstream gave its first record (-1 with AcksNone).
func (l *lane) write(batch []produced) (int64, error) {
	recs := make([]records.Record, len(batch))
	for i, b := range batch {
		recs[i] = records.Record{Timestamp: b.rec.Timestamp.UnixMilli(), Key: b.rec.Key, Value: b.rec.Value, Headers: b.rec.Headers}
	}
	enc, err := records.EncodeBatch(recs, l.p.opts.Compression)
	if err != nil {
		return 0, fmt.Errorf("mesh: produce to %s/%d: %w", l.key.topic, l.key.partition, err)
	}
	args := upstream.ProduceArgs{Topic: l.key.topic, Partition: l.key.partition, Version: 9, Acks: l.p.opts.Acks.kafka(),
		TimeoutMillis: 30000, Records: enc}
	m := l.p.m
	id := partition.Identity(m.upstreamName, l.key.topic, l.key.partition)
	for attempt := 0; ; attempt++ {
		if l.p.opts.Acks == AcksNone {
			err = m.cluster.Tell(partition.Kind, id, partition.NewProduceRequest(args))
			if err == nil {
				return -1, nil
			}
		} else {
			ctx, cancel := context.WithTimeout(m.ctx, time.Minute)
			var res upstream.ProduceResult
			res, err = m.writers.Produce(ctx, m.cluster, m.upstreamName, args)
			cancel()
			if err == nil {
				if res.ErrorCode != 0 {
					return 0, fmt.Errorf("mesh: produce to %s/%d: %w", l.key.topic, l.key.partition, kerr.ErrorForCode(res.ErrorCode))
				}
				return res.BaseOffset, nil
			}
		}
		// Refused or dropped before any actor took it (its owner moved
		// on the way): sending it again cannot duplicate it.
		if attempt >= produceRetries || !(errors.Is(err, cluster.ErrNotOwner) || errors.Is(err, cluster.ErrGone)) {
			return 0, err
		}
		pause(m.ctx, retryWait<<attempt)
	}
}

// batchOverhead is a record batch's header; recordOverhead bounds a
// record's own fields besides its key, value and headers (length,
// attributes, timestamp and offset deltas, key and value lengths, header
// count, as varints); headerOverhead a header's two lengths.
const (
	batchOverhead  = 61
	recordOverhead = 1 + 5 + 10 + 5 + 5 + 5 + 5
	headerOverhead = 10
)

// encodedSize bounds the bytes r takes in an uncompressed batch.
func encodedSize(r *Record) int {
	n := recordOverhead + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += headerOverhead + len(h.Key) + len(h.Value)
	}
	return n
}

// answerAll answers a batch's records: offsets from base, or err.
func answerAll(p *Producer, batch []produced, base int64, err error) {
	for i, b := range batch {
		r := b.rec
		switch {
		case err != nil:
		case base < 0:
			r.Offset = -1
		default:
			r.Offset = base + int64(i)
		}
		if b.done != nil {
			b.done(r, err)
		}
		<-p.slots
		p.wg.Done()
	}
}
