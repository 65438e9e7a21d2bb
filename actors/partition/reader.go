package partition

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/records"
	"github.com/meshka/meshka/upstream"
)

// MaxRemoteRead bounds what one read through the mesh asks for: every
// answer crosses nodes as one message.
const MaxRemoteRead = 1 << 20

// Reader reads one partition from its actor's cache, on whichever node
// the mesh has the actor, so a partition is streamed from upstream once in
// the whole cluster, by its owner, however many nodes read it. It is the
// path of readers that are not Kafka clients (a Kafka client reads on the
// partition's leader, which is the owner). Flow control is the reader's
// own pace: it has at most two reads out (see Read), each for at most
// MaxRemoteRead bytes, and asks again only when its caller reads, so a
// reader that does not read costs the owner nothing beyond those two.
//
// A read the cache cannot answer (older data than it holds) goes straight
// to upstream from this node, as a Kafka client's would. Not safe for
// concurrent use.
type Reader struct {
	mesh      *cluster.Mesh
	up        *upstream.Client
	id        string
	topic     string
	partition int32
	isolation int8
	offset    int64
	split     []records.Batch

	ahead      *cluster.Reply // the read asked ahead, for aheadAt
	aheadAt    int64
	aheadBytes int32
	aheadWait  time.Duration
}

// NewReader reads topic's partition of upstreamName from offset on.
func NewReader(mesh *cluster.Mesh, up *upstream.Client, upstreamName, topic string, partition int32, offset int64, isolation int8) *Reader {
	return &Reader{mesh: mesh, up: up, id: Identity(upstreamName, topic, partition), topic: topic, partition: partition,
		offset: offset, isolation: isolation}
}

// Offset is the offset the next read starts at.
func (r *Reader) Offset() int64 { return r.offset }

// Read returns the record batches from the reader's offset on, at most
// maxBytes of them (a first batch larger comes whole), waiting up to wait
// for some to arrive, and moves the offset past them. An empty answer
// with no error means nothing came in time. A Kafka error (a partition
// gone, its owner moving: NOT_LEADER_OR_FOLLOWER) comes as a *kerr.Error;
// the reader may read again, which asks the owner of the moment.
//
// When a read brings data, the reader asks for what follows at once,
// before it returns, so the owner's answer crosses the network while the
// caller handles this one: two reads out at most, the second of them
// waiting at the owner once the reader has caught up. Close drops it.
func (r *Reader) Read(ctx context.Context, maxBytes int32, wait time.Duration) ([][]byte, error) {
	maxBytes = min(max(maxBytes, 1), MaxRemoteRead)
	reply := r.takeAhead(maxBytes, wait)
	if reply == nil {
		var err error
		if reply, err = r.ask(maxBytes, wait); err != nil {
			return nil, err
		}
	}
	// The owner answers within the wait; past it by much, it is gone.
	rctx, cancel := context.WithTimeout(ctx, wait+10*time.Second)
	defer cancel()
	v, err := reply.Wait(rctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("reading %s: %w: %w", r.id, kerr.NotLeaderForPartition, err)
	}
	res, ok := v.(*FetchResponse)
	if !ok {
		return nil, fmt.Errorf("reading %s: answered %T", r.id, v)
	}
	switch ReadStatus(res.Status) {
	case Failed:
		return nil, kerr.ErrorForCode(int16(res.ErrorCode))
	case ReadThrough:
		if res.HighWatermark == r.offset {
			return nil, nil // at upstream's end: nothing came in time
		}
		return r.readUpstream(ctx, maxBytes)
	}
	out, err := r.advance(res.Batches)
	if err == nil && len(out) > 0 {
		r.ahead, r.aheadAt = r.askQuiet(maxBytes, wait), r.offset
		r.aheadBytes, r.aheadWait = maxBytes, wait
	}
	return out, err
}

// Close drops the read asked ahead, if any.
func (r *Reader) Close() {
	if r.ahead != nil {
		r.ahead.Close()
		r.ahead = nil
	}
}

// takeAhead is the read asked ahead if it is the one wanted now.
func (r *Reader) takeAhead(maxBytes int32, wait time.Duration) *cluster.Reply {
	a := r.ahead
	r.ahead = nil
	if a == nil {
		return nil
	}
	if r.aheadAt != r.offset || r.aheadBytes != maxBytes || r.aheadWait != wait {
		a.Close()
		return nil
	}
	return a
}

func (r *Reader) ask(maxBytes int32, wait time.Duration) (*cluster.Reply, error) {
	req := &FetchRequest{Offset: r.offset, MaxBytes: maxBytes, Isolation: int32(r.isolation), MaxWaitMillis: int32(wait / time.Millisecond)}
	reply, err := r.mesh.Ask(Kind, r.id, req)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w: %w", r.id, kerr.NotLeaderForPartition, err)
	}
	return reply, nil
}

// askQuiet asks ahead; a failure is met again by the next Read.
func (r *Reader) askQuiet(maxBytes int32, wait time.Duration) *cluster.Reply {
	reply, _ := r.ask(maxBytes, wait)
	return reply
}

// readUpstream reads what the owner's cache does not hold from upstream.
func (r *Reader) readUpstream(ctx context.Context, maxBytes int32) ([][]byte, error) {
	up := r.up.FetchOnce(ctx, r.topic, r.partition, r.offset, maxBytes, r.isolation, 11)
	if up.ErrorCode != 0 {
		return nil, kerr.ErrorForCode(up.ErrorCode)
	}
	if len(up.RecordBatches) == 0 {
		return nil, nil
	}
	return r.advance([][]byte{up.RecordBatches})
}

// advance moves the offset past the complete batches in bufs and returns
// them one per element; a partial batch at the end is dropped, to be read
// again.
func (r *Reader) advance(bufs [][]byte) ([][]byte, error) {
	var out [][]byte
	for _, buf := range bufs {
		batches, _, err := records.Split(buf, r.split)
		r.split = batches
		if err != nil {
			return out, fmt.Errorf("reading %s at %d: %w", r.id, r.offset, err)
		}
		for _, b := range batches {
			if b.Last < r.offset {
				continue // a batch holding the offset starts before it
			}
			out = append(out, b.Data)
			r.offset = b.Next()
		}
	}
	return out, nil
}

// Produce sends one batch to the partition's actor on whichever node owns
// it and returns upstream's answer for it (a Kafka error code in the
// result, as a broker gives it). An error means the batch may not have
// reached the owner; an idempotent batch can be sent again safely.
func Produce(ctx context.Context, mesh *cluster.Mesh, upstreamName string, args upstream.ProduceArgs) (upstream.ProduceResult, error) {
	id := Identity(upstreamName, args.Topic, args.Partition)
	v, err := mesh.Request(ctx, Kind, id, NewProduceRequest(args))
	if err != nil {
		return upstream.ProduceResult{}, fmt.Errorf("producing to %s: %w", id, err)
	}
	res, ok := v.(*ProduceResponse)
	if !ok {
		return upstream.ProduceResult{}, fmt.Errorf("producing to %s: answered %T", id, v)
	}
	return res.Result(args.Partition), nil
}
