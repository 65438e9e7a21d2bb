package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
)

// configRefusal is the code a config request's resource is refused with
// when the principal may not do op (DESCRIBE_CONFIGS or ALTER_CONFIGS)
// on it, as Kafka checks: a topic's on the topic, a group's on the group,
// a broker's, a broker logger's and client metrics' on the cluster; 0
// when allowed. A type Kafka does not check goes through.
func (c *conn) configRefusal(op acl.Operation, typ kmsg.ConfigResourceType, name string) int16 {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if !c.allowedTopic(op, name) {
			return topicRefused
		}
	case kmsg.ConfigResourceTypeGroupConfig:
		if !c.allowed(op, acl.Group, name) {
			return groupRefused
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger, kmsg.ConfigResourceTypeClientMetrics:
		if !c.allowedCluster(op) {
			return clusterRefused
		}
	}
	return 0
}

// forwardConfigs forwards a config request with its refused resources
// taken out, and answers those in their own entries. resources reads a
// request's resources as (type, name) pairs; keep returns the request
// with only the resources at the given indexes; answer adds an error
// entry for a refused resource to upstream's answer.
func (c *conn) forwardConfigs(req kmsg.Request, op acl.Operation, n int, resource func(i int) (kmsg.ConfigResourceType, string),
	keep func(idx []int) kmsg.Request, answer func(resp kmsg.Response, i int, code int16)) func() (kmsg.Response, error) {
	var codes map[int]int16
	for i := 0; i < n; i++ {
		typ, name := resource(i)
		if code := c.configRefusal(op, typ, name); code != 0 {
			if codes == nil {
				codes = make(map[int]int16)
			}
			codes[i] = code
		}
	}
	if len(codes) == 0 {
		return forward(nil)(c, req)
	}
	var allowed []int
	for i := 0; i < n; i++ {
		if _, refused := codes[i]; !refused {
			allowed = append(allowed, i)
		}
	}
	up := keep(allowed)
	return func() (kmsg.Response, error) {
		resp := req.ResponseKind()
		if len(allowed) > 0 {
			resp = c.forward(up, up)
		}
		for i := 0; i < n; i++ {
			if code, ok := codes[i]; ok {
				answer(resp, i, code)
			}
		}
		return resp, nil
	}
}
