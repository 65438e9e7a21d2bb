package kafkawire

// DeleteRecords, key 21.
//
// Forwarded at the client's version to each partition's upstream leader.
// The partition actors are told the new log start offsets at once, so
// deleted records stop being served from their caches; deletions made
// straight upstream reach the caches with their streams' next answer.
// With ACLs, topics the principal may not DELETE are answered
// TOPIC_AUTHORIZATION_FAILED and the rest forwarded.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/upstream"
)

func init() { register(21, 0, maxOf(21), handleDeleteRecords) }

func handleDeleteRecords(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteRecordsRequest)
	ok, no := split(req.Topics, func(t *kmsg.DeleteRecordsRequestTopic) bool { return c.allowedTopic(acl.Delete, t.Topic) })
	up, refused := *req, *req
	up.Topics, refused.Topics = ok, no
	return func() (kmsg.Response, error) {
		var kresp kmsg.Response
		if no == nil {
			kresp = c.forward(req, req)
		} else {
			var send kmsg.Request
			if len(ok) > 0 {
				send = &up
			}
			kresp = c.forwardAllowed(send, upstream.ErrorResponse(&refused, topicRefused), func(resp, r kmsg.Response) {
				to := resp.(*kmsg.DeleteRecordsResponse)
				to.Topics = append(to.Topics, r.(*kmsg.DeleteRecordsResponse).Topics...)
			})
		}
		for _, t := range kresp.(*kmsg.DeleteRecordsResponse).Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode == 0 {
					_ = c.s.deps.Mesh.Tell(partition.Kind, c.s.partitionID(t.Topic, p.Partition), &partition.LogStart{Offset: p.LowWatermark})
				}
			}
		}
		return kresp, nil
	}
}
