package kafkawire

// DeleteTopics, key 20.
//
// Forwarded to upstream's controller at the client's version (v6 names
// topics by id, earlier versions by name). Deleted topics' cached metadata
// is dropped; their partition actors learn of it from their streams.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() {
	register(20, 0, maxOf(20), forward(func(c *conn, _ kmsg.Request, kresp kmsg.Response) {
		for _, t := range kresp.(*kmsg.DeleteTopicsResponse).Topics {
			if t.Topic != nil {
				c.s.deps.Upstream.Meta().Invalidate(*t.Topic)
			}
		}
	}))
}
