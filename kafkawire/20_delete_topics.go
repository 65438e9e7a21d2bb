package kafkawire

// DeleteTopics, key 20.
//
// Forwarded to upstream's controller at the client's version (v6 names
// topics by id, earlier versions by name). Deleted topics' cached metadata
// is dropped; their partition actors learn of it from their streams. With
// ACLs, topics the principal may not DELETE are answered
// TOPIC_AUTHORIZATION_FAILED and the rest forwarded; a topic named only by
// its id needs DELETE on every topic (a "*" rule), since meshka does not
// resolve ids to names.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/upstream"
)

func init() { register(20, 0, maxOf(20), handleDeleteTopics) }

func handleDeleteTopics(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteTopicsRequest)
	okNames, noNames := split(req.TopicNames, func(n *string) bool { return c.allowedTopic(acl.Delete, *n) })
	ok, no := split(req.Topics, func(t *kmsg.DeleteTopicsRequestTopic) bool {
		name := acl.Wildcard
		if t.Topic != nil {
			name = *t.Topic
		}
		return c.allowedTopic(acl.Delete, name)
	})
	up, refused := *req, *req
	up.TopicNames, up.Topics = okNames, ok
	refused.TopicNames, refused.Topics = noNames, no
	return func() (kmsg.Response, error) {
		var kresp kmsg.Response
		if noNames == nil && no == nil {
			kresp = c.forward(req, req)
		} else {
			var send kmsg.Request
			if len(okNames)+len(ok) > 0 {
				send = &up
			}
			kresp = c.forwardAllowed(send, upstream.ErrorResponse(&refused, topicRefused), func(resp, r kmsg.Response) {
				to := resp.(*kmsg.DeleteTopicsResponse)
				to.Topics = append(to.Topics, r.(*kmsg.DeleteTopicsResponse).Topics...)
			})
		}
		for _, t := range kresp.(*kmsg.DeleteTopicsResponse).Topics {
			if t.Topic != nil {
				c.s.deps.Upstream.Meta().Invalidate(*t.Topic)
			}
		}
		return kresp, nil
	}
}
