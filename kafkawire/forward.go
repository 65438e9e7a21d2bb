package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/upstream"
)

// forward answers a request with upstream's response. Pinned requests go to
// the controller at exactly the client's version; the others are routed by
// kgo (sharded by leader, or to a coordinator) at the highest version both
// sides know, and the response is re-encoded at the client's version.
// after, when set, runs on the response before it is written.
func forward(pin bool, after func(c *conn, req kmsg.Request, resp kmsg.Response)) handler {
	return func(c *conn, req kmsg.Request) func() (kmsg.Response, error) {
		return func() (kmsg.Response, error) {
			var resp kmsg.Response
			var err error
			if pin {
				resp, err = c.s.deps.Upstream.RequestPinned(c.ctx, req)
			} else {
				resp, err = c.s.deps.Upstream.Request(c.ctx, req)
			}
			if err != nil {
				c.s.log.Warn("upstream request failed", "api", kmsg.NameForKey(req.Key()), "client", c.remote, "err", err)
				resp = errorResponse(req, errCode(err))
			}
			if after != nil {
				after(c, req, resp)
			}
			return resp, nil
		}
	}
}

// maxOf is the newest version a pass-through handler takes: kmsg's newest,
// capped where meshka's upstream client must stay below a version whose
// fields changed meaning (topic ids); ApiVersions narrows it further to
// upstream's range.
func maxOf(key int16) int16 {
	v := kmsg.RequestForKey(key).MaxVersion()
	if c := upstream.MaxRoutedVersion(key); c >= 0 && c < v {
		v = c
	}
	return v
}
