package kafkawire

// CreateTopics, key 19.
//
// Forwarded to upstream's controller at the client's version; the created
// topics' cached metadata is dropped so the next request sees them. With
// ACLs, a topic needs CREATE on the cluster or on the topic, else it is
// answered TOPIC_AUTHORIZATION_FAILED and the rest forwarded; a created
// topic's configs (v5+) are left out, with TOPIC_AUTHORIZATION_FAILED as
// its config error, unless the principal may DESCRIBE_CONFIGS it.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/upstream"
)

func init() { register(19, 0, maxOf(19), handleCreateTopics) }

func handleCreateTopics(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.CreateTopicsRequest)
	cluster := !c.aclOn() || c.allowedCluster(acl.Create)
	ok, no := split(req.Topics, func(t *kmsg.CreateTopicsRequestTopic) bool { return cluster || c.allowedTopic(acl.Create, t.Topic) })
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
				to := resp.(*kmsg.CreateTopicsResponse)
				to.Topics = append(to.Topics, r.(*kmsg.CreateTopicsResponse).Topics...)
			})
		}
		resp := kresp.(*kmsg.CreateTopicsResponse)
		for i := range resp.Topics {
			t := &resp.Topics[i]
			if c.aclOn() && len(t.Configs) > 0 && !c.allowedTopic(acl.DescribeConfigs, t.Topic) {
				t.Configs, t.ConfigErrorCode = nil, topicRefused
			}
		}
		for _, t := range ok {
			c.s.deps.Upstream.Meta().Invalidate(t.Topic)
		}
		return resp, nil
	}
}
