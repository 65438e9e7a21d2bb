package kafkawire

// CreatePartitions, key 37.
//
// Forwarded to upstream's controller at the client's version; the topics'
// cached metadata is dropped so new partitions are seen at once.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() {
	register(37, 0, maxOf(37), forward(func(c *conn, kreq kmsg.Request, _ kmsg.Response) {
		for _, t := range kreq.(*kmsg.CreatePartitionsRequest).Topics {
			c.s.deps.Upstream.Meta().Invalidate(t.Topic)
		}
	}))
}
