package kafkawire

// OffsetFetch, key 9.
//
// v0-v9. Committed offsets live upstream under the same group id, so the
// request goes at the client's version to upstream's coordinator of the
// group; from v8 a request may name several groups, and each goes to its
// own coordinator, the answers merged. Members join groups at meshka, never
// upstream, so upstream may not know a group that has no commits yet; a
// Kafka broker answers that with offset -1 per partition and no error,
// which is what clients wait for, so meshka answers the same.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(9, 0, maxOf(9), forward(noCommitsYet)) }

func noCommitsYet(_ *conn, kreq kmsg.Request, kresp kmsg.Response) {
	req, resp := kreq.(*kmsg.OffsetFetchRequest), kresp.(*kmsg.OffsetFetchResponse)
	notFound := kerr.GroupIDNotFound.Code
	if resp.ErrorCode == notFound {
		resp.ErrorCode = 0
		resp.Topics = resp.Topics[:0]
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch = p, -1, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}
	for gi := range resp.Groups {
		g := &resp.Groups[gi]
		if g.ErrorCode != notFound {
			continue
		}
		g.ErrorCode = 0
		g.Topics = g.Topics[:0]
		for _, rg := range req.Groups {
			if rg.Group != g.Group {
				continue
			}
			for _, t := range rg.Topics {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic, rt.TopicID = t.Topic, t.TopicID
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch = p, -1, -1
					rt.Partitions = append(rt.Partitions, rp)
				}
				g.Topics = append(g.Topics, rt)
			}
		}
	}
}
