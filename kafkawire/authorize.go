package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
)

// What a refused request, or part of one, is answered with, as Kafka's
// authorizer answers.
var (
	topicRefused   = kerr.TopicAuthorizationFailed.Code
	groupRefused   = kerr.GroupAuthorizationFailed.Code
	clusterRefused = kerr.ClusterAuthorizationFailed.Code
	txnRefused     = kerr.TransactionalIDAuthorizationFailed.Code
)

// allowed says whether the connection's principal, from its host, may do
// op on the resource (security.acls). With ACLs off it is one atomic load.
func (c *conn) allowed(op acl.Operation, rt acl.ResourceType, name string) bool {
	return c.s.deps.ACL.Authorize(c.Principal(), c.host, op, rt, name)
}

func (c *conn) allowedTopic(op acl.Operation, topic string) bool {
	return c.allowed(op, acl.Topic, topic)
}

func (c *conn) allowedCluster(op acl.Operation) bool {
	return c.allowed(op, acl.Cluster, acl.ClusterName)
}

// aclOn says whether any rule is enforced now.
func (c *conn) aclOn() bool { return c.s.deps.ACL.Enabled() }

// split parts in's entries into those ok allows and those it refuses,
// each in request order. With none refused, allowed is in itself and
// nothing is allocated.
func split[T any](in []T, ok func(*T) bool) (allowed, refused []T) {
	for i := range in {
		if !ok(&in[i]) {
			return splitFrom(in, i, ok)
		}
	}
	return in, nil
}

func splitFrom[T any](in []T, first int, ok func(*T) bool) (allowed, refused []T) {
	allowed = append(make([]T, 0, len(in)-1), in[:first]...)
	refused = append(refused, in[first])
	for i := first + 1; i < len(in); i++ {
		if ok(&in[i]) {
			allowed = append(allowed, in[i])
		} else {
			refused = append(refused, in[i])
		}
	}
	return allowed, refused
}

// forwardAllowed answers a forwarded request some parts of which were
// refused: up is the client's request with only the allowed parts (nil:
// none is left to send), refused the answer to the rest, which merge
// adds to upstream's answer to up.
func (c *conn) forwardAllowed(up kmsg.Request, refused kmsg.Response, merge func(resp, refused kmsg.Response)) kmsg.Response {
	if up == nil {
		return refused
	}
	resp := c.forward(up, up)
	merge(resp, refused)
	return resp
}

// authorizedOps is the bit field of the operations on a resource the
// principal may do (bit n for Kafka's operation n), as Metadata,
// DescribeCluster and DescribeGroups report when asked; Kafka's
// "not provided" while ACLs are off.
func (c *conn) authorizedOps(rt acl.ResourceType, name string) int32 {
	if !c.aclOn() {
		return -2147483648
	}
	var ops []acl.Operation
	switch rt {
	case acl.Topic:
		ops = []acl.Operation{acl.Read, acl.Write, acl.Create, acl.Delete, acl.Alter, acl.Describe, acl.DescribeConfigs, acl.AlterConfigs}
	case acl.Group:
		ops = []acl.Operation{acl.Read, acl.Describe, acl.Delete}
	case acl.Cluster:
		ops = []acl.Operation{acl.Create, acl.Alter, acl.Describe, acl.ClusterAction, acl.DescribeConfigs, acl.AlterConfigs, acl.IdempotentWrite}
	}
	var bits int32
	for _, op := range ops {
		if c.allowed(op, rt, name) {
			bits |= 1 << uint(op)
		}
	}
	return bits
}
