package kafkawire

// ListOffsets, key 2.
//
// Every version kmsg knows, narrowed to upstream's by ApiVersions.
// Forwarded at the client's version to each partition's upstream leader
// (earliest, latest, by timestamp, max timestamp), so a v0 client gets
// upstream's own v0 answer (offsets before a time, by segment) and every
// error code is one its version defines. With ACLs, topics the principal
// may not DESCRIBE are answered TOPIC_AUTHORIZATION_FAILED and the rest
// forwarded.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/upstream"
)

func init() { register(2, 0, maxOf(2), handleListOffsets) }

func handleListOffsets(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.ListOffsetsRequest)
	ok, no := split(req.Topics, func(t *kmsg.ListOffsetsRequestTopic) bool { return c.allowedTopic(acl.Describe, t.Topic) })
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
			to := resp.(*kmsg.ListOffsetsResponse)
			to.Topics = append(to.Topics, r.(*kmsg.ListOffsetsResponse).Topics...)
		}), nil
	}
}
