package kafkawire

// Fetch, key 1.
//
// v4-v12 (record batches; v13+ names topics by id and is not handled).
// Every partition is read from its partition actor's cache, batches exactly
// as upstream sent them; offsets outside the cache window are read straight
// from upstream. The long poll honours MaxWaitMillis (capped by
// kafka.fetch_max_wait_cap), MinBytes, MaxBytes and each partition's max
// bytes, and wakes as soon as any cache receives data. read_committed
// stops at the last stable offset and lists the aborted transactions in
// range. Fetch sessions (KIP-227) are declined: the session id is always 0,
// so clients send full requests, and a request naming a session gets
// FETCH_SESSION_ID_NOT_FOUND.

import (
	"context"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/actors/partition"
)

func init() { register(1, 4, 12, handleFetch) }

func handleFetch(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.FetchRequest)
	return func() (kmsg.Response, error) {
		return c.s.fetch(c, req)
	}
}

// fetchPart is one partition of a fetch in progress.
type fetchPart struct {
	topic     string
	offset    int64
	maxBytes  int32
	out       *kmsg.FetchResponseTopicPartition
	done      bool // has data or an error; not asked again
	id        string
	reply     chan partition.ReadResult
	batches   [][]byte
	bytes     int
	notify    <-chan struct{}
	throughUp bool
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
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		out := &resp.Topics[ti]
		*out = kmsg.NewFetchResponseTopic()
		out.Topic = rt.Topic
		out.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			op := &out.Partitions[pi]
			*op = kmsg.NewFetchResponseTopicPartition()
			op.Partition = rp.Partition
			op.HighWatermark, op.LastStableOffset, op.LogStartOffset = -1, -1, -1
			p := &fetchPart{topic: rt.Topic, offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, out: op}
			if code := s.checkPartition(c, rt.Topic, rp.Partition); code != 0 {
				op.ErrorCode = code
				p.done = true
			} else {
				p.id = s.partitionID(rt.Topic, rp.Partition)
				p.reply = make(chan partition.ReadResult, 1)
			}
			parts = append(parts, p)
		}
	}

	wait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	if wait > s.cfg.FetchMaxWaitCap {
		wait = s.cfg.FetchMaxWaitCap
	}
	deadline := time.Now().Add(wait)
	for {
		total, failed, err := s.fetchRound(c.ctx, parts, req.IsolationLevel, maxBytes)
		if err != nil {
			return nil, err
		}
		if failed || total >= int(req.MinBytes) || total > 0 && total >= int(maxBytes) || !time.Now().Before(deadline) {
			break
		}
		if !waitAny(c.ctx, parts, deadline) {
			if c.ctx.Err() != nil {
				return nil, c.ctx.Err()
			}
			break
		}
	}
	for _, p := range parts {
		switch {
		case len(p.batches) > 0:
			p.out.RecordBatches = concat(p.batches, p.bytes)
		case p.out.RecordBatches == nil:
			// Kafka sends an empty record set, never a null one;
			// librdkafka rejects null.
			p.out.RecordBatches = []byte{}
		}
	}
	return resp, nil
}

// fetchRound asks every partition without data for what it has, all at
// once, then collects the answers in request order. It reports the bytes
// gathered and whether any partition failed (Kafka answers errors at once).
func (s *Server) fetchRound(ctx context.Context, parts []*fetchPart, isolation int8, maxBytes int32) (total int, failed bool, err error) {
	for _, p := range parts {
		total += p.bytes
	}
	budget := int(maxBytes) - total
	asked := make([]bool, len(parts))
	for i, p := range parts {
		if p.done {
			continue
		}
		limit := p.maxBytes
		if int(limit) > budget {
			limit = int32(max(budget, 0))
		}
		if limit <= 0 && total > 0 {
			continue // the response is full; Kafka leaves later partitions empty
		}
		msg := &partition.Fetch{Offset: p.offset, MaxBytes: max(limit, 1), Isolation: isolation, Reply: p.reply}
		if err := s.deps.Mesh.Send(partition.Kind, p.id, msg); err != nil {
			p.out.ErrorCode, p.done = kerr.NotLeaderForPartition.Code, true
			failed = true
			continue
		}
		asked[i] = true
	}
	for i, p := range parts {
		if !asked[i] {
			continue
		}
		var r partition.ReadResult
		select {
		case r = <-p.reply:
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
		switch r.Status {
		case partition.Failed:
			p.out.ErrorCode, p.done, failed = r.Err, true, true
		case partition.ReadThrough:
			limit := min(p.maxBytes, int32(max(int(maxBytes)-total, 1)))
			up := s.deps.Upstream.FetchOnce(ctx, p.topic, p.out.Partition, p.offset, limit, isolation)
			up.Partition = p.out.Partition
			*p.out = up
			p.done, p.throughUp = true, true
			if up.ErrorCode != 0 {
				failed = true
			}
			total += len(up.RecordBatches)
		default:
			p.out.HighWatermark, p.out.LastStableOffset, p.out.LogStartOffset = r.HighWatermark, r.LastStableOffset, r.LogStartOffset
			p.notify = r.Notify
			if r.Bytes > 0 {
				p.batches, p.bytes, p.done = r.Batches, r.Bytes, true
				total += r.Bytes
				for _, a := range r.Aborted {
					at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
					at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
					p.out.AbortedTransactions = append(p.out.AbortedTransactions, at)
				}
				if isolation == partition.ReadCommitted && p.out.AbortedTransactions == nil {
					p.out.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
				}
			}
		}
	}
	return total, failed, nil
}

// waitAny blocks until a partition without data gets some, the deadline
// passes (false) or the connection ends (false).
func waitAny(ctx context.Context, parts []*fetchPart, deadline time.Time) bool {
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
			return false
		case <-ctx.Done():
			return false
		}
	case 1:
		select {
		case <-chans[0]:
			return true
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	cases := make([]reflect.SelectCase, 0, len(chans)+2)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())})
	for _, ch := range chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen >= 2
}

func concat(batches [][]byte, n int) []byte {
	if len(batches) == 1 {
		return batches[0]
	}
	out := make([]byte, 0, n)
	for _, b := range batches {
		out = append(out, b...)
	}
	return out
}
