package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/upstream"
)

// forward answers a request with upstream's answer to it, sent at the
// client's version to the broker Kafka would route it to (see
// upstream.Client.Forward). after, when set, runs on the response before
// it is written.
func forward(after func(c *conn, req kmsg.Request, resp kmsg.Response)) handler {
	return func(c *conn, req kmsg.Request) func() (kmsg.Response, error) {
		return func() (kmsg.Response, error) {
			resp := c.forward(req, req)
			if after != nil {
				after(c, req, resp)
			}
			return resp, nil
		}
	}
}

// forward sends up, the client's request as it goes upstream, and returns
// upstream's answer; when nothing could be sent, the answer a broker gives
// to req, the client's request, with the error on every part of it.
func (c *conn) forward(req, up kmsg.Request) kmsg.Response {
	resp, err := c.s.deps.Upstream.Forward(c.ctx, up)
	if err != nil {
		if c.ctx.Err() == nil {
			c.s.upstreamTrouble(kmsg.NameForKey(req.Key()), err)
		}
		return upstream.ErrorResponse(req, errCode(err))
	}
	return resp
}

// maxOf is the newest version a pass-through handler takes: kmsg's newest,
// capped where meshka's own reading of the request would go wrong (topic
// ids); ApiVersions narrows it further to upstream's range.
func maxOf(key int16) int16 {
	v := kmsg.RequestForKey(key).MaxVersion()
	if c := upstream.MaxRoutedVersion(key); c >= 0 && c < v {
		v = c
	}
	return v
}
