package kafkawire

// CreatePartitions, key 37.
//
// Forwarded to upstream's controller at the client's version; the topics'
// cached metadata is dropped so new partitions are seen at once. With
// ACLs, topics the principal may not ALTER are answered
// TOPIC_AUTHORIZATION_FAILED and the rest forwarded.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/upstream"
)

func init() { register(37, 0, maxOf(37), handleCreatePartitions) }

func handleCreatePartitions(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.CreatePartitionsRequest)
	ok, no := split(req.Topics, func(t *kmsg.CreatePartitionsRequestTopic) bool { return c.allowedTopic(acl.Alter, t.Topic) })
	up, refused := *req, *req
	up.Topics, refused.Topics = ok, no
	return func() (kmsg.Response, error) {
		var kresp kmsg.Response
		switch {
		case no == nil:
			kresp = c.forward(req, req)
		default:
			var send kmsg.Request
			if len(ok) > 0 {
				send = &up
			}
			kresp = c.forwardAllowed(send, upstream.ErrorResponse(&refused, topicRefused), func(resp, r kmsg.Response) {
				to := resp.(*kmsg.CreatePartitionsResponse)
				to.Topics = append(to.Topics, r.(*kmsg.CreatePartitionsResponse).Topics...)
			})
		}
		for _, t := range ok {
			c.s.deps.Upstream.Meta().Invalidate(t.Topic)
		}
		return kresp, nil
	}
}
