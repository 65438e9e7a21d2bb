package kafkawire

// TxnOffsetCommit, key 28.
//
// The group actor checks generation and member (v3+, KIP-447); upstream's
// group coordinator then stores the offsets in the producer's transaction,
// as a standalone commit like OffsetCommit.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(28, 0, maxOf(28), handleTxnOffsetCommit) }

func handleTxnOffsetCommit(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.TxnOffsetCommitRequest)
	return func() (kmsg.Response, error) {
		code, err := c.checkCommit(req.Group, req.Generation, req.MemberID, req.InstanceID)
		if err != nil {
			return nil, err
		}
		if code == 0 {
			up := *req
			up.Generation, up.MemberID, up.InstanceID = -1, "", nil
			kresp, err := c.s.deps.Upstream.Request(c.ctx, &up)
			if err == nil {
				return kresp, nil
			}
			c.s.log.Warn("upstream txn offset commit failed", "group", req.Group, "err", err)
			code = errCode(err)
		}
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
}
