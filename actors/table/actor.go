package table

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"google.golang.org/protobuf/proto"

	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/records"
	"github.com/meshka/meshka/upstream"
)

// Config is what every table actor on a node shares.
type Config struct {
	// Cluster is the node's mesh, through which the partitions are read
	// from their owners' caches. It is asked for once an actor
	// activates; nil (the node still starting) is met by trying again.
	Cluster  func() *cluster.Mesh
	Upstream *upstream.Client
	MaxBytes int64 // each table's memory bound (tables.max_bytes); 0: none
	// MaxParked bounds the requests waiting for the load or for an
	// offset; past it a request is answered BUSY (1024 when 0).
	MaxParked int
	Logger    *slog.Logger
}

// Props builds the actor props for the table kind.
func Props(cfg Config) *actor.Props {
	if cfg.MaxParked <= 0 {
		cfg.MaxParked = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return actor.PropsFromProducer(func() actor.Actor { return &Actor{cfg: cfg, log: cfg.Logger} },
		actor.WithMailbox(cluster.Mailbox(4096)))
}

const (
	// readWait is how long one read of a partition waits for data.
	readWait = time.Second
	// retryWait paces reads and lookups while an owner or a leader moves.
	retryWait = 100 * time.Millisecond
	// tickEvery is how often parked requests are checked for their
	// deadlines while any is parked.
	tickEvery = 250 * time.Millisecond
	// failLinger is how long a table that failed to read its topic
	// answers the failure before it stops; the next request activates a
	// new one, which tries afresh. A table over its memory bound stays:
	// loading it again would only fill memory again.
	failLinger = 5 * time.Second
	// defaultWait and maxWait bound a request's wait when it names none,
	// or a longer one.
	defaultWait = 10 * time.Second
	maxWait     = time.Minute
)

// Actor owns one topic's Table: it learns the topic's partitions and
// offsets, runs one reader goroutine per partition that hands it each
// read's records (one read out per partition: the reader waits for the
// actor to take its records before it reads on), keeps reading after the
// load so the table stays current, and answers requests, parking those
// that must wait for the load or for an offset.
type Actor struct {
	cfg    Config
	log    *slog.Logger
	topic  string
	upName string

	self   *actor.PID
	root   *actor.RootContext
	ctx    context.Context // ends when the actor stops: its goroutines end
	cancel context.CancelFunc

	table   *Table
	failed  error // the load failed before there was a table
	loadAt  time.Time
	logged  bool            // the load's end, or the failure, has been logged
	acks    []chan struct{} // per partition: the actor took the read
	parked  []parked
	ticking bool
}

// parked is a request waiting for the load or for an offset.
type parked struct {
	to       *actor.PID
	msg      proto.Message
	deadline time.Time
}

// Local messages, from the actor's own goroutines; they never leave the
// node.
type (
	loaded struct {
		starts, ends []int64
	}
	loadFailed struct{ err error }
	read       struct {
		partition int32
		recs      []records.Record
		next      int64
		err       error
	}
	tick      struct{}
	lingerEnd struct{}
)

// Receive handles one message; protoactor calls it from one goroutine at a
// time.
func (a *Actor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *cluster.Activate:
		a.init(c, m.Identity)
	case *loaded:
		a.start(m)
	case *loadFailed:
		a.fail(m.err)
		a.serve(time.Now())
	case *read:
		a.apply(m)
	case *tick:
		a.ticking = false
		a.serve(time.Now())
	case *lingerEnd:
		c.Stop(c.Self())
	case *GetRequest:
		a.request(c, m, m.TimeoutMillis)
	case *ScanRequest:
		a.request(c, m, m.TimeoutMillis)
	case *WaitRequest:
		a.request(c, m, m.TimeoutMillis)
	case *cluster.Relinquish:
		// Another node owns the table now; it rebuilds it from upstream.
		c.Stop(c.Self())
	case *actor.Stopping:
		a.stop()
	}
}

func (a *Actor) init(c actor.Context, identity string) {
	upName, topic, err := ParseIdentity(identity)
	if err != nil {
		a.log.Error("table actor with a bad identity", "identity", identity, "err", err)
		a.failed = &Error{Code: Code_INVALID, Msg: err.Error()}
		c.Stop(c.Self())
		return
	}
	a.topic, a.upName = topic, upName
	a.log = a.cfg.Logger.With("table", topic)
	a.self, a.root = c.Self(), c.ActorSystem().Root
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.loadAt = time.Now()
	go a.load(a.ctx)
}

// load learns the topic's partitions and each one's log start and end,
// retrying anything but a topic upstream does not have (a leader moving,
// upstream unreachable for a while: requests meanwhile wait, or time out
// and are asked again), and tells the actor.
func (a *Actor) load(ctx context.Context) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		starts, ends, err := a.offsets(ctx)
		switch {
		case err == nil:
			a.root.Send(a.self, &loaded{starts: starts, ends: ends})
			return
		case ctx.Err() != nil:
			return
		case final(err):
			a.root.Send(a.self, &loadFailed{err: err})
			return
		}
		a.log.Debug("table: topic's offsets not known yet", "err", err)
		pause(ctx, retryWait<<min(attempt, 5))
	}
}

func (a *Actor) offsets(ctx context.Context) (starts, ends []int64, err error) {
	ts, err := a.cfg.Upstream.Meta().Topics(ctx, []string{a.topic}, false)
	if err != nil {
		return nil, nil, err
	}
	n := -1
	for _, t := range ts {
		if t.Name != a.topic {
			continue
		}
		if t.Err == kerr.UnknownTopicOrPartition.Code {
			return nil, nil, &Error{Code: Code_UNKNOWN_TOPIC, Msg: fmt.Sprintf("table %q: upstream has no such topic", a.topic)}
		}
		if t.Err != 0 {
			return nil, nil, kerr.ErrorForCode(t.Err)
		}
		n = len(t.Partitions)
	}
	if n < 0 {
		return nil, nil, &Error{Code: Code_UNKNOWN_TOPIC, Msg: fmt.Sprintf("table %q: upstream has no such topic", a.topic)}
	}
	starts, ends = make([]int64, n), make([]int64, n)
	for p := range int32(n) {
		if starts[p], err = a.cfg.Upstream.OffsetAt(ctx, a.topic, p, upstream.OffsetEarliest); err != nil {
			return nil, nil, err
		}
		if ends[p], err = a.cfg.Upstream.OffsetAt(ctx, a.topic, p, upstream.OffsetLatest); err != nil {
			return nil, nil, err
		}
	}
	return starts, ends, nil
}

// start makes the table and its readers once the offsets are known.
func (a *Actor) start(m *loaded) {
	t, err := New(m.starts, m.ends, a.cfg.MaxBytes)
	if err != nil {
		a.fail(err)
		a.serve(time.Now())
		return
	}
	a.table = t
	a.acks = make([]chan struct{}, len(m.starts))
	for p := range a.acks {
		a.acks[p] = make(chan struct{}, 1)
		go a.read(a.ctx, int32(p), m.starts[p], a.acks[p])
	}
	a.noteLoaded()
	a.serve(time.Now())
}

// read is partition p's reader: it reads the partition from offset on,
// through the mesh from its owner's cache (or upstream, for what the
// cache no longer holds), and hands each read's records to the actor,
// waiting for the actor to take them before it reads on.
func (a *Actor) read(ctx context.Context, p int32, offset int64, ack <-chan struct{}) {
	var r *partition.Reader
	defer func() {
		if r != nil {
			r.Close()
		}
	}()
	for ctx.Err() == nil {
		if r == nil {
			mesh := a.cfg.Cluster()
			if mesh == nil {
				pause(ctx, retryWait)
				continue
			}
			r = partition.NewReader(mesh, a.cfg.Upstream, a.upName, a.topic, p, offset, partition.ReadUncommitted)
		}
		bufs, err := r.Read(ctx, partition.MaxRemoteRead, readWait)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, kerr.OffsetOutOfRange):
			// Retention removed what the reader had not read yet: go on
			// from the new log start, as a consumer resetting to the
			// earliest offset does; the removed records are gone
			// upstream too.
			start, serr := a.cfg.Upstream.OffsetAt(ctx, a.topic, p, upstream.OffsetEarliest)
			if serr != nil || start <= r.Offset() {
				pause(ctx, retryWait)
				continue
			}
			a.log.Warn("table: records removed upstream before they were read", "partition", p, "from", r.Offset(), "to", start)
			r.Close()
			offset, r = start, nil
			if !a.hand(ctx, &read{partition: p, next: start}, ack) {
				return
			}
			continue
		case err != nil && retriable(err):
			pause(ctx, retryWait)
			continue
		case err != nil:
			a.hand(ctx, &read{partition: p, err: fmt.Errorf("table %q: reading partition %d: %w", a.topic, p, err)}, ack)
			return
		case len(bufs) == 0:
			continue // nothing came in time
		}
		var recs []records.Record
		for _, b := range bufs {
			if recs, err = records.DecodeBatch(b, recs); err != nil {
				a.hand(ctx, &read{partition: p, err: fmt.Errorf("table %q: partition %d: %w", a.topic, p, err)}, ack)
				return
			}
		}
		offset = r.Offset()
		if !a.hand(ctx, &read{partition: p, recs: recs, next: offset}, ack) {
			return
		}
	}
}

// hand gives a read to the actor and waits until it has taken it; false
// once the actor stops.
func (a *Actor) hand(ctx context.Context, m *read, ack <-chan struct{}) bool {
	a.root.Send(a.self, m)
	if m.err != nil {
		return false
	}
	select {
	case <-ack:
		return true
	case <-ctx.Done():
		return false
	}
}

// apply applies a read and answers what it lets through.
func (a *Actor) apply(m *read) {
	if a.table == nil {
		return
	}
	if m.err != nil {
		a.fail(m.err)
		a.serve(time.Now())
		return
	}
	a.acks[m.partition] <- struct{}{} // the reader waits for it: never full
	if a.table.Err() != nil {
		return
	}
	if err := a.table.Apply(m.partition, m.recs, m.next); err != nil {
		a.log.Warn("table: over its memory bound: every request is refused until the table moves or the node restarts",
			"max_bytes", a.cfg.MaxBytes, "err", err)
		a.cancel() // its readers have nothing more to do
	}
	a.noteLoaded()
	a.serve(time.Now())
}

func (a *Actor) noteLoaded() {
	if !a.logged && a.table.Loaded() {
		a.logged = true
		a.log.Debug("table loaded", "keys", a.table.Len(), "bytes", a.table.Bytes(), "took", time.Since(a.loadAt))
	}
}

// fail puts the actor in an error state: reading stops, requests get the
// error, and the actor stops after failLinger so that a later request
// tries afresh.
func (a *Actor) fail(err error) {
	if a.failed != nil || (a.table != nil && a.table.Err() != nil) {
		return
	}
	a.log.Warn("table failed", "err", err)
	if a.table != nil {
		a.table.Fail(err)
	} else {
		a.failed = err
	}
	a.cancel()
	root, self := a.root, a.self
	time.AfterFunc(failLinger, func() { root.Send(self, &lingerEnd{}) })
}

// request answers a request at once when it can, and parks it otherwise.
func (a *Actor) request(c actor.Context, msg proto.Message, timeoutMillis int32) {
	now := time.Now()
	if resp := a.answer(msg); resp != nil {
		if c.Sender() != nil {
			c.Respond(resp)
		}
		return
	}
	if c.Sender() == nil {
		return
	}
	if len(a.parked) >= a.cfg.MaxParked {
		c.Respond(a.refusal(msg, Code_BUSY, fmt.Sprintf("table %q: %d requests wait already; ask again", a.topic, len(a.parked))))
		return
	}
	wait := defaultWait
	if timeoutMillis > 0 {
		wait = min(time.Duration(timeoutMillis)*time.Millisecond, maxWait)
	}
	a.parked = append(a.parked, parked{to: c.Sender(), msg: msg, deadline: now.Add(wait)})
	a.schedule()
}

// serve answers the parked requests that can be answered now, and those
// past their deadlines with TIMEOUT.
func (a *Actor) serve(now time.Time) {
	kept := a.parked[:0]
	for _, p := range a.parked {
		resp := a.answer(p.msg)
		if resp == nil && !now.Before(p.deadline) {
			resp = a.refusal(p.msg, Code_TIMEOUT, a.timeoutText(p.msg))
		}
		if resp != nil {
			a.root.Send(p.to, resp)
			continue
		}
		kept = append(kept, p)
	}
	clear(a.parked[len(kept):])
	a.parked = kept
	a.schedule()
}

func (a *Actor) schedule() {
	if a.ticking || len(a.parked) == 0 {
		return
	}
	a.ticking = true
	root, self := a.root, a.self
	time.AfterFunc(tickEvery, func() { root.Send(self, &tick{}) })
}

func (a *Actor) timeoutText(msg proto.Message) string {
	if w, ok := msg.(*WaitRequest); ok && a.table != nil {
		return fmt.Sprintf("table %q: partition %d applied up to %d, not yet %d", a.topic, w.Partition, a.table.Position(w.Partition), w.Offset)
	}
	return fmt.Sprintf("table %q: still loading", a.topic)
}

// answer is msg's response, or nil when it must wait.
func (a *Actor) answer(msg proto.Message) proto.Message {
	if err := a.err(); err != nil {
		return a.refusal(msg, codeOf(err), err.Error())
	}
	if a.table == nil {
		return nil
	}
	switch m := msg.(type) {
	case *GetRequest:
		if !a.table.Loaded() {
			return nil
		}
		e, ok, err := a.table.Get(m.Key)
		if err != nil {
			return a.refusal(msg, codeOf(err), err.Error())
		}
		resp := &GetResponse{Found: ok}
		if ok {
			resp.Entry = NewItem(e)
		}
		return resp
	case *ScanRequest:
		if !a.table.Loaded() {
			return nil
		}
		limit := int(m.Limit)
		if limit <= 0 {
			limit = DefaultScanLimit
		}
		var after []byte
		if m.HasAfter {
			after = m.After
			if after == nil {
				after = []byte{}
			}
		}
		prefix := m.Prefix
		if prefix == nil {
			prefix = []byte{}
		}
		entries, more, err := a.table.Scan(prefix, after, min(limit, MaxScanLimit), MaxScanBytes)
		if err != nil {
			return a.refusal(msg, codeOf(err), err.Error())
		}
		resp := &ScanResponse{More: more, Positions: a.table.Positions(),
			Entries: make([]*Item, len(entries))}
		for i, e := range entries {
			resp.Entries[i] = NewItem(e)
		}
		return resp
	case *WaitRequest:
		if m.Partition < 0 || m.Partition >= a.table.Partitions() {
			return &WaitResponse{Code: Code_INVALID, Error: fmt.Sprintf("table %q: no partition %d (the topic has %d)", a.topic, m.Partition, a.table.Partitions())}
		}
		if !a.table.Reached(m.Partition, m.Offset) {
			return nil
		}
		return &WaitResponse{Position: a.table.Position(m.Partition)}
	}
	return nil
}

func (a *Actor) err() error {
	if a.failed != nil {
		return a.failed
	}
	if a.table != nil {
		return a.table.Err()
	}
	return nil
}

// refusal is msg's response carrying code and text instead of an answer.
func (a *Actor) refusal(msg proto.Message, code Code, text string) proto.Message {
	switch msg.(type) {
	case *GetRequest:
		return &GetResponse{Code: code, Error: text}
	case *ScanRequest:
		return &ScanResponse{Code: code, Error: text}
	case *WaitRequest:
		return &WaitResponse{Code: code, Error: text}
	}
	return nil
}

// stop ends the readers and the loader, and answers what waits MOVED: the
// askers ask again, which reaches the new owner.
func (a *Actor) stop() {
	if a.cancel != nil {
		a.cancel()
	}
	for _, p := range a.parked {
		a.root.Send(p.to, a.refusal(p.msg, Code_MOVED, fmt.Sprintf("table %q: its actor stopped; ask again", a.topic)))
	}
	a.parked = nil
}

// retriable says whether an error passes once leaders or owners settle:
// a retriable Kafka error, or a node on the way not answering.
func retriable(err error) bool {
	var te *Error
	if errors.As(err, &te) {
		return te.Retriable()
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// final says whether an error of the load is the table's answer rather
// than a moment's trouble: the topic does not exist.
func final(err error) bool {
	var te *Error
	return errors.As(err, &te) && !te.Retriable()
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
