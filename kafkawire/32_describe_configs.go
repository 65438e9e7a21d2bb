package kafkawire

// DescribeConfigs, key 32.
//
// Forwarded (topic resources to any broker, broker resources to the broker
// named) and re-encoded at the client's version; a v0 client gets
// IsDefault derived from the source upstream reported.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() {
	register(32, 0, maxOf(32), forward(false, func(_ *conn, req kmsg.Request, kresp kmsg.Response) {
		if req.GetVersion() != 0 {
			return
		}
		for ri := range kresp.(*kmsg.DescribeConfigsResponse).Resources {
			r := &kresp.(*kmsg.DescribeConfigsResponse).Resources[ri]
			for ci := range r.Configs {
				r.Configs[ci].IsDefault = r.Configs[ci].Source == kmsg.ConfigSourceDefaultConfig
			}
		}
	}))
}
