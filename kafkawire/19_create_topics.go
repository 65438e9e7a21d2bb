package kafkawire

// CreateTopics, key 19.
//
// Forwarded to upstream's controller at the client's version; the created
// topics' cached metadata is dropped so the next request sees them.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() {
	register(19, 0, maxOf(19), forward(func(c *conn, kreq kmsg.Request, _ kmsg.Response) {
		req := kreq.(*kmsg.CreateTopicsRequest)
		for _, t := range req.Topics {
			c.s.deps.Upstream.Meta().Invalidate(t.Topic)
		}
	}))
}
