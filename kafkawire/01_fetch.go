package kafkawire

// Fetch, key 1.
//
// v0-v12 (v13+ names topics by id and is not handled). From v4 every
// partition is read from its partition actor's cache, batches exactly as
// upstream sent them; offsets outside the cache window are read straight
// from upstream. v0-v3 clients want the old message formats, which the
// cache does not hold: they are read straight from upstream at their own
// version, and upstream converts as it would for them directly. The long poll honours MaxWaitMillis (capped by
// kafka.fetch_max_wait_cap), MinBytes, MaxBytes and each partition's max
// bytes, and wakes as soon as any cache receives data. read_committed
// stops at the last stable offset and lists the aborted transactions in
// range. Fetch sessions (KIP-227) are declined: the session id is always 0,
// so clients send full requests, and a request naming a session gets
// FETCH_SESSION_ID_NOT_FOUND. With ACLs, a partition of a topic the
// principal may not READ gets TOPIC_AUTHORIZATION_FAILED.

import (
	"context"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/internal/answer"
)

func init() { register(1, 0, 12, handleFetch) }

func handleFetch(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.FetchRequest)
	return func() (kmsg.Response, error) {
		return c.s.fetch(c, req)
	}
}

// fetchPart is one partition of a fetch in progress.
type fetchPart struct {
	topic    string
	offset   int64
	maxBytes int32
	out      *kmsg.FetchResponseTopicPartition
	done     bool // has data or an error; not asked again
	id       string
	batches  [][]byte
	bytes    int
	notify   <-chan struct{}
	prefixAt int   // where splice found the RecordBatches length prefix
	held     int64 // response budget its read-through records hold
}

func (s *Server) fetch(c *conn, req *kmsg.FetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.SessionID != 0 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	}
	maxBytes := req.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 1<<31 - 1
	}
	var parts []*fetchPart
	failedEarly := false // Kafka answers a partition error at once
	refused := 0         // partitions of topics the principal may not READ
	resp.Topics = answer.Each(req.Topics, func(out *kmsg.FetchResponseTopic, rt *kmsg.FetchRequestTopic) {
		out.Topic = rt.Topic
		readable := c.allowedTopic(acl.Read, rt.Topic)
		out.Partitions = answer.Each(rt.Partitions, func(op *kmsg.FetchResponseTopicPartition, rp *kmsg.FetchRequestTopicPartition) {
			op.Partition = rp.Partition
			op.HighWatermark, op.LastStableOffset, op.LogStartOffset = -1, -1, -1
			p := &fetchPart{topic: rt.Topic, offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, out: op}
			if !readable {
				// Refused, but not a reason to cut the long poll of
				// the others short, as in Kafka.
				op.ErrorCode, p.done = topicRefused, true
				refused++
			} else if code := s.checkFetchPartition(c, rt.Topic, rp.Partition); code != 0 {
				op.ErrorCode = code
				p.done = true
				failedEarly = true
			} else {
				p.id = s.partitionID(rt.Topic, rp.Partition)
			}
			parts = append(parts, p)
		})
	})
	if refused > 0 && refused == len(parts) {
		failedEarly = true // nothing to wait for
	}

	wait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	if wait > s.cfg.FetchMaxWaitCap {
		wait = s.cfg.FetchMaxWaitCap
	}
	start := time.Now()
	deadline := start.Add(wait)
	// A cold partition is read through upstream once the wait ends, which
	// takes a round trip; while one is cold the wait ends a quarter early,
	// so the answer still comes within what the client asked for: a
	// client's socket deadline may be its MaxWait and little more
	// (kafka-go sends three quarters of its own as MaxWaitMillis).
	coldBy := start.Add(wait - wait/4)
	for {
		total, failed, err := s.fetchRound(c.ctx, parts, req.IsolationLevel, maxBytes, req.Version)
		if err != nil {
			s.releaseHeld(parts)
			return nil, err
		}
		until := deadline
		if anyCold(parts) {
			until = coldBy
		}
		if failed || failedEarly || total >= int(req.MinBytes) || total > 0 && total >= int(maxBytes) || !time.Now().Before(until) {
			break
		}
		if !waitAny(c.ctx, s.stopping, parts, until) {
			if c.ctx.Err() != nil {
				s.releaseHeld(parts)
				return nil, c.ctx.Err()
			}
			break
		}
	}
	// A partition whose stream has not answered yet knows no watermarks;
	// Kafka always reports them (kcat's -e relies on the high watermark),
	// so a cold partition is read straight from upstream instead.
	if c.ctx.Err() == nil {
		total := 0
		for _, p := range parts {
			total += p.bytes
		}
		for _, p := range parts {
			if p.cold() {
				limit := min(p.maxBytes, int32(max(int(maxBytes)-total, 1)))
				total += s.readThrough(c.ctx, p, limit, req.IsolationLevel, req.Version)
			}
		}
	}
	s.fitMaxBytes(parts, maxBytes)
	var spliced []*fetchPart
	var held int64
	for _, p := range parts {
		held += p.held
		switch {
		case len(p.batches) > 0:
			// Written from the cache's own buffers when the response
			// is (splicedFetch), never copied.
			p.out.RecordBatches = []byte{}
			spliced = append(spliced, p)
		case p.out.RecordBatches == nil:
			// Kafka sends an empty record set, never a null one;
			// librdkafka rejects null.
			p.out.RecordBatches = []byte{}
		}
	}
	if len(spliced) > 0 {
		return &splicedFetch{FetchResponse: resp, parts: spliced, held: held}, nil
	}
	s.cfg.ResponseBudget.Release(held) // nothing held comes without batches; kept for safety
	return resp, nil
}

// cold says whether the partition's stream has not answered yet: it
// knows no watermarks, which only a read through upstream gives.
func (p *fetchPart) cold() bool {
	return !p.done && p.out.HighWatermark < 0 && p.out.ErrorCode == 0
}

// anyCold says whether any partition of a fetch is cold.
func anyCold(parts []*fetchPart) bool {
	for _, p := range parts {
		if p.cold() {
			return true
		}
	}
	return false
}

// fitMaxBytes applies MaxBytes to the whole response as a Kafka broker
// does: the first partition with records keeps them (a first batch comes
// whatever its size, so a reader always makes progress); after it, a
// partition's records come only if they fit in what MaxBytes leaves, in
// request order. Reads are asked for no more than what is left, but a
// read's first batch comes whole and reads asked at once (a partition's
// first reader, a cold cache) cannot know each other's sizes, so this is
// where the bound is kept. A partition left out keeps its watermarks and
// its records' response budget is given back.
func (s *Server) fitMaxBytes(parts []*fetchPart, maxBytes int32) {
	kept := 0
	for _, p := range parts {
		if p.bytes == 0 {
			continue
		}
		if kept > 0 && kept+p.bytes > int(maxBytes) {
			s.cfg.ResponseBudget.Release(p.held)
			p.held, p.batches, p.bytes = 0, nil, 0
			p.out.RecordBatches, p.out.AbortedTransactions = nil, nil
			continue
		}
		kept += p.bytes
	}
}

// releaseHeld gives back the response budget of a fetch that will not be
// answered.
func (s *Server) releaseHeld(parts []*fetchPart) {
	for _, p := range parts {
		s.cfg.ResponseBudget.Release(p.held)
		p.held = 0
	}
}

// checkFetchPartition is checkPartition without waiting for a metadata
// refresh once the partition is known: every fetch checks every
// partition, and a lookup past the metadata TTL held one fetch in each
// TTL behind a Metadata round trip upstream. A topic deleted or a leader
// moved since shows in upstream's answer to the stream or the read
// itself, which passes the error to the client.
func (s *Server) checkFetchPartition(c *conn, topic string, p int32) int16 {
	if pm, ok := s.deps.Upstream.Meta().CachedPartition(topic, p); !ok || pm.Err != 0 {
		return s.checkPartition(c, topic, p)
	}
	if !s.deps.Mesh.Owns(partition.Kind, s.partitionID(topic, p)) {
		return kerr.NotLeaderForPartition.Code
	}
	return 0
}

// fetchRound asks every partition without data for what it has, then
// collects the answers in request order. It reports the bytes gathered
// and whether any partition failed (Kafka answers errors at once). A
// partition whose actor runs here is read from its cache on this
// goroutine (partition.Feeds); only a partition's first reader asks its
// actor through the mesh, which activates it, and all such asks go out
// at once before any answer is awaited.
func (s *Server) fetchRound(ctx context.Context, parts []*fetchPart, isolation int8, maxBytes int32, version int16) (total int, failed bool, err error) {
	for _, p := range parts {
		total += p.bytes
	}
	asked := make([]*cluster.Reply, len(parts))
	limits := make([]int32, len(parts))
	defer func() {
		for _, r := range asked {
			if r != nil {
				r.Close()
			}
		}
	}()
	for i, p := range parts {
		if p.done {
			continue
		}
		limit := min(p.maxBytes, int32(max(int(maxBytes)-total, 0)))
		if limit <= 0 && total > 0 {
			continue // the response is full; Kafka leaves later partitions empty
		}
		if version < cachedFetchVersion {
			total += s.readThrough(ctx, p, max(limit, 1), isolation, version)
			failed = failed || p.out.ErrorCode != 0
			continue
		}
		if r, ok := s.deps.Feeds.Read(p.id, p.offset, max(limit, 1), isolation); ok {
			failed = s.take(ctx, p, r, isolation, maxBytes, version, &total) || failed
			continue
		}
		msg := &partition.FetchRequest{Offset: p.offset, MaxBytes: max(limit, 1), Isolation: int32(isolation)}
		reply, err := s.deps.Mesh.Ask(partition.Kind, p.id, msg)
		if err != nil {
			p.out.ErrorCode, p.done = kerr.NotLeaderForPartition.Code, true
			failed = true
			continue
		}
		asked[i], limits[i] = reply, max(limit, 1)
	}
	for i, p := range parts {
		if asked[i] == nil {
			continue
		}
		v, err := asked[i].Wait(ctx)
		asked[i] = nil
		if ctx.Err() != nil {
			return 0, false, ctx.Err()
		}
		fr, ok := v.(*partition.FetchResponse)
		if err != nil || !ok {
			// The actor stopped before it answered: its node gave the
			// partition away, and the client asks the new leader.
			p.out.ErrorCode, p.done = kerr.NotLeaderForPartition.Code, true
			failed = true
			continue
		}
		r := fr.Read()
		if r.Status == partition.Served && r.Bytes == 0 {
			// The actor is up now: read its cache here, which gives the
			// long poll the channel to wait on.
			if again, ok := s.deps.Feeds.Read(p.id, p.offset, limits[i], isolation); ok {
				r = again
			}
		}
		failed = s.take(ctx, p, r, isolation, maxBytes, version, &total) || failed
	}
	return total, failed, nil
}

// take puts one partition's cache answer into the response, reading
// through from upstream when the cache says so, and adds its bytes to
// total. It reports whether the partition failed.
func (s *Server) take(ctx context.Context, p *fetchPart, r partition.ReadResult, isolation int8, maxBytes int32, version int16, total *int) bool {
	switch r.Status {
	case partition.Failed:
		p.out.ErrorCode, p.done = r.Err, true
		return true
	case partition.ReadThrough:
		p.notify = r.Notify
		if r.HighWatermark == p.offset {
			// Ahead of the stream, at upstream's end when the stream
			// last asked: nothing to read upstream. The long poll
			// waits on the cache, which the stream wakes when upstream
			// has more.
			return false
		}
		limit := min(p.maxBytes, int32(max(int(maxBytes)-*total, 1)))
		s.m.readThroughs.Inc()
		n := s.readThrough(ctx, p, limit, isolation, version)
		s.m.fetched(p.topic, n)
		*total += n
		return p.out.ErrorCode != 0
	}
	p.out.HighWatermark, p.out.LastStableOffset, p.out.LogStartOffset = r.HighWatermark, r.LastStableOffset, r.LogStartOffset
	p.notify = r.Notify
	if r.Bytes > 0 {
		p.batches, p.bytes, p.done = r.Batches, r.Bytes, true
		*total += r.Bytes
		s.m.fetched(p.topic, r.Bytes)
		for _, a := range r.Aborted {
			at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
			at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
			p.out.AbortedTransactions = append(p.out.AbortedTransactions, at)
		}
		if isolation == partition.ReadCommitted && p.out.AbortedTransactions == nil {
			p.out.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		}
	}
	return false
}

// cachedFetchVersion is the first Fetch version whose clients read record
// batches (magic 2), the only format partition caches hold.
const cachedFetchVersion = 4

// readThrough answers a partition straight from upstream. It marks the
// partition done only when it got data or an error, so an empty answer is
// asked again in the next round of a long poll. Upstream's records are
// written to the client from the buffer they were read into, as cached
// ones are (splicedFetch), never copied into the response.
func (s *Server) readThrough(ctx context.Context, p *fetchPart, limit int32, isolation int8, version int16) int {
	// Records read through are this connection's alone until written, so
	// they are paid from the node's response budget: while non-reading
	// clients hold it, a read-through answers empty and the client asks
	// again, rather than the node's memory growing.
	budget := s.cfg.ResponseBudget
	got := budget.AcquireUpTo(int64(limit))
	if got == 0 {
		s.budgetFull.Add(1)
		return 0
	}
	up := s.deps.Upstream.FetchOnce(ctx, p.topic, p.out.Partition, p.offset, int32(got), isolation, version)
	up.Partition = p.out.Partition
	*p.out = up
	n := len(up.RecordBatches)
	if int64(n) <= got {
		budget.Release(got - int64(n))
		got = int64(n)
	} else {
		// Upstream sends a first batch whole, however large (KIP-74):
		// count what it really sent, as far as the budget allows.
		got += budget.AcquireUpTo(int64(n) - got)
	}
	p.held += got
	p.done = up.ErrorCode != 0 || n > 0
	if n > 0 {
		p.batches, p.bytes = [][]byte{up.RecordBatches}, n
	}
	return n
}

// waitAny blocks until a partition without data gets some (true), or the
// deadline passes, the connection ends or the server stops (false): at
// shutdown a long poll is answered at once with what it has.
func waitAny(ctx context.Context, stop <-chan struct{}, parts []*fetchPart, deadline time.Time) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	var chans []<-chan struct{}
	for _, p := range parts {
		if !p.done && p.notify != nil {
			chans = append(chans, p.notify)
		}
	}
	switch len(chans) {
	case 0:
		select {
		case <-timer.C:
		case <-ctx.Done():
		case <-stop:
		}
		return false
	case 1:
		select {
		case <-chans[0]:
			return true
		case <-timer.C:
		case <-ctx.Done():
		case <-stop:
		}
		return false
	}
	cases := make([]reflect.SelectCase, 0, len(chans)+3)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(stop)})
	for _, ch := range chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen >= 3
}
