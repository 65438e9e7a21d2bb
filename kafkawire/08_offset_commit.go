package kafkawire

// OffsetCommit, key 8.
//
// v0-v9. The group actor checks generation and member as Kafka's
// coordinator would; the offsets are then stored in upstream under the same
// group id as a standalone commit (generation -1, no member), which
// upstream accepts because no member ever joins the group there. So
// committed offsets survive any meshka restart and upstream tools read them.
// The commit goes at the client's version to upstream's coordinator of the
// group, so a v2-v4 retention time means what the client meant. With ACLs,
// the group needs READ (else every partition gets
// GROUP_AUTHORIZATION_FAILED), and each topic READ (else its partitions
// get TOPIC_AUTHORIZATION_FAILED and the rest are committed).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/upstream"
)

func init() { register(8, 0, maxOf(8), handleOffsetCommit) }

func handleOffsetCommit(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetCommitRequest)
	if !c.allowed(acl.Read, acl.Group, req.Group) {
		return now(upstream.ErrorResponse(req, groupRefused), nil)
	}
	ok, no := split(req.Topics, func(t *kmsg.OffsetCommitRequestTopic) bool { return c.allowedTopic(acl.Read, t.Topic) })
	client := req
	if no != nil {
		allowed := *req
		allowed.Topics = ok
		client = &allowed
	}
	up := *client
	up.Generation, up.MemberID, up.InstanceID = -1, "", nil
	return func() (kmsg.Response, error) {
		if no == nil {
			return c.commit(req, &up, req.Group, req.Generation, req.MemberID, req.InstanceID, false)
		}
		refused := *req
		refused.Topics = no
		resp := upstream.ErrorResponse(&refused, topicRefused).(*kmsg.OffsetCommitResponse)
		if len(ok) == 0 {
			return resp, nil
		}
		kresp, err := c.commit(client, &up, req.Group, req.Generation, req.MemberID, req.InstanceID, false)
		if err != nil {
			return nil, err
		}
		got := kresp.(*kmsg.OffsetCommitResponse)
		got.Topics = append(got.Topics, resp.Topics...)
		return got, nil
	}
}

// commit stores a client's commit (req) upstream as up, a standalone commit,
// once the group actor has checked its generation and member, as Kafka's
// coordinator would; OffsetCommit and TxnOffsetCommit share it.
func (c *conn) commit(req, up kmsg.Request, group string, generation int32, member string, instance *string, transactional bool) (kmsg.Response, error) {
	code, err := c.checkCommit(group, generation, member, instance, transactional)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return upstream.ErrorResponse(req, code), nil
	}
	return c.forward(req, up), nil
}
