package upstream

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ProduceArgs is one partition's batch as a client sent it.
type ProduceArgs struct {
	Topic           string
	Partition       int32
	Version         int16 // the client's Produce version, kept upstream
	Acks            int16
	TimeoutMillis   int32
	TransactionalID *string
	Records         []byte // passed byte for byte
}

// ProduceResult is upstream's answer for the partition, or a local error
// code when upstream could not be reached.
type ProduceResult = kmsg.ProduceResponseTopicPartition

// SubmitProduce hands one batch to meshka's produce connection to upstream
// broker leader and returns without waiting for the answer. Batches
// submitted for one broker are written in the order SubmitProduce was
// called, so a caller that submits a partition's batches in order from one
// goroutine has them appended in that order. done is called exactly once,
// from a goroutine of the connection's; an error wrapping ErrNotSent means
// the batch never left meshka. SubmitProduce never blocks: when the
// connection's queue is full it returns false and done is not called, and
// the caller tries again later. (A caller that blocked here could stall the
// connection's reader, which may be handing answers to that very caller.)
// acks=0 is sent as acks=1: the client is not waiting, and the answer is
// what lets the partition's next batches follow in order.
func (c *Client) SubmitProduce(leader int32, a *ProduceArgs, done func(ProduceResult, error)) bool {
	acks := a.Acks
	if acks == 0 {
		acks = 1
	}
	p := c.pipe(leader)
	if p == nil {
		go done(ProduceResult{}, errPipeClosed) // never from the caller's goroutine
		return true
	}
	return p.submit(&produceCall{args: a, acks: acks, done: done})
}

// pipe returns the produce pipe to broker id, starting it on first use;
// nil once the client is closed.
func (c *Client) pipe(id int32) *pipe {
	c.pipesMu.Lock()
	defer c.pipesMu.Unlock()
	if c.pipes == nil {
		return nil
	}
	p, ok := c.pipes[id]
	if !ok {
		p = newPipe(c, id)
		c.pipes[id] = p
	}
	return p
}

func (c *Client) closePipes() {
	c.pipesMu.Lock()
	pipes := c.pipes
	c.pipes = nil
	c.pipesMu.Unlock()
	for _, p := range pipes {
		p.close()
	}
}

// RetriableLeaderErr is a partition error that means "ask again elsewhere".
func RetriableLeaderErr(code int16) bool {
	switch code {
	case kerr.NotLeaderForPartition.Code, kerr.LeaderNotAvailable.Code, kerr.FencedLeaderEpoch.Code:
		return true
	}
	return false
}

// Backoff is the wait before retry attempt (0-based): 50ms doubling, at
// most a second.
func Backoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << attempt
	if d > time.Second {
		d = time.Second
	}
	return d
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
