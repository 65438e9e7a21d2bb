package kafkawire

// OffsetForLeaderEpoch, key 23.
//
// Forwarded at the client's version to each partition's upstream leader:
// leader epochs are upstream's, so clients' log-truncation checks see the
// real history. With ACLs, a principal with CLUSTER_ACTION on the cluster
// may ask about any topic; others only about topics they may DESCRIBE,
// the rest answered TOPIC_AUTHORIZATION_FAILED.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/upstream"
)

func init() { register(23, 0, maxOf(23), handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	if !c.aclOn() || c.allowedCluster(acl.ClusterAction) {
		return forward(nil)(c, req)
	}
	ok, no := split(req.Topics, func(t *kmsg.OffsetForLeaderEpochRequestTopic) bool { return c.allowedTopic(acl.Describe, t.Topic) })
	if no == nil {
		return forward(nil)(c, req)
	}
	up, refused := *req, *req
	up.Topics, refused.Topics = ok, no
	var send kmsg.Request
	if len(ok) > 0 {
		send = &up
	}
	return func() (kmsg.Response, error) {
		return c.forwardAllowed(send, upstream.ErrorResponse(&refused, topicRefused), func(resp, r kmsg.Response) {
			to := resp.(*kmsg.OffsetForLeaderEpochResponse)
			to.Topics = append(to.Topics, r.(*kmsg.OffsetForLeaderEpochResponse).Topics...)
		}), nil
	}
}
