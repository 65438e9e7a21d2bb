package kafkawire

// OffsetCommit, key 8.
//
// v0-v9. The group actor checks generation and member as Kafka's
// coordinator would; the offsets are then stored in upstream under the same
// group id as a standalone commit (generation -1, no member), which
// upstream accepts because no member ever joins the group there. So
// committed offsets survive any meshka restart and upstream tools read them.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(8, 0, maxOf(8), handleOffsetCommit) }

func handleOffsetCommit(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetCommitRequest)
	return func() (kmsg.Response, error) {
		code, err := c.checkCommit(req.Group, req.Generation, req.MemberID, req.InstanceID)
		if err != nil {
			return nil, err
		}
		if code != 0 {
			return offsetCommitError(req, code), nil
		}
		up := *req
		up.Generation, up.MemberID, up.InstanceID = -1, "", nil
		kresp, err := c.s.deps.Upstream.Request(c.ctx, &up)
		if err != nil {
			c.s.log.Warn("upstream offset commit failed", "group", req.Group, "err", err)
			return offsetCommitError(req, errCode(err)), nil
		}
		return kresp, nil
	}
}

func offsetCommitError(req *kmsg.OffsetCommitRequest, code int16) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
