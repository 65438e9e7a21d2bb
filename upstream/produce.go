package upstream

import (
	"context"
	"errors"
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

// produceRetries bounds the re-sends after upstream said the leader moved;
// such a batch was not appended, so re-sending cannot duplicate it.
const produceRetries = 3

// Produce sends one batch to the partition's upstream leader and waits for
// the answer. acks=0 is sent as acks=1: the client is not waiting, and an
// answer keeps batches of one partition strictly one after another.
func (c *Client) Produce(ctx context.Context, a *ProduceArgs) ProduceResult {
	res := kmsg.NewProduceResponseTopicPartition()
	res.Partition = a.Partition
	acks := a.Acks
	if acks == 0 {
		acks = 1
	}
	for attempt := 0; ; attempt++ {
		pm, err := c.meta.Partition(ctx, a.Topic, a.Partition)
		if err == nil {
			var r ProduceResult
			r, err = c.produceTo(ctx, pm.Leader, a, acks)
			if err == nil {
				if retriableLeaderErr(r.ErrorCode) && attempt < produceRetries {
					c.meta.Invalidate(a.Topic)
					sleepCtx(ctx, backoff(attempt))
					continue
				}
				return r
			}
		}
		var ke *kerr.Error
		if errors.As(err, &ke) {
			if retriableLeaderErr(ke.Code) && attempt < produceRetries {
				c.meta.Invalidate(a.Topic)
				sleepCtx(ctx, backoff(attempt))
				continue
			}
			res.ErrorCode = ke.Code
			return res
		}
		c.log.Warn("upstream produce failed", "topic", a.Topic, "partition", a.Partition, "err", err)
		res.ErrorCode = kerr.RequestTimedOut.Code
		return res
	}
}

func (c *Client) produceTo(ctx context.Context, leader int32, a *ProduceArgs, acks int16) (ProduceResult, error) {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(a.Version)
	req.Acks = acks
	req.TimeoutMillis = a.TimeoutMillis
	req.TransactionID = a.TransactionalID
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = a.Topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = a.Partition
	rp.Records = a.Records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout+time.Duration(a.TimeoutMillis)*time.Millisecond)
	defer cancel()
	kresp, err := c.main.Broker(int(leader)).Request(ctx, &pinned{Request: req, max: a.Version})
	if err != nil {
		return ProduceResult{}, err
	}
	resp := kresp.(*kmsg.ProduceResponse)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Partition == a.Partition {
				return p, nil
			}
		}
	}
	return ProduceResult{}, errors.New("upstream produce response is missing the partition")
}

// retriableLeaderErr is a partition error that means "ask again elsewhere".
func retriableLeaderErr(code int16) bool {
	switch code {
	case kerr.NotLeaderForPartition.Code, kerr.LeaderNotAvailable.Code, kerr.FencedLeaderEpoch.Code:
		return true
	}
	return false
}

func backoff(attempt int) time.Duration {
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
