package kafkawire

// TxnOffsetCommit, key 28.
//
// The group actor checks generation and member (v3+, KIP-447); upstream's
// coordinator of the group then stores the offsets in the producer's
// transaction, as a standalone commit like OffsetCommit. It goes at the
// client's version: from v5 (KIP-890) the coordinator adds the group to the
// transaction itself, which a client still sending AddOffsetsToTxn must not
// be told it did; v6 names topics by id, as the client did. With ACLs, the
// transactional id needs WRITE (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED
// in every partition), the group READ (else GROUP_AUTHORIZATION_FAILED),
// and each topic READ (else TOPIC_AUTHORIZATION_FAILED in its partitions,
// the rest committed).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/upstream"
)

func init() { register(28, 0, maxOf(28), handleTxnOffsetCommit) }

func handleTxnOffsetCommit(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.TxnOffsetCommitRequest)
	switch {
	case !c.allowed(acl.Write, acl.TransactionalID, req.TransactionalID):
		return now(upstream.ErrorResponse(req, txnRefused), nil)
	case !c.allowed(acl.Read, acl.Group, req.Group):
		return now(upstream.ErrorResponse(req, groupRefused), nil)
	}
	ok, no := split(req.Topics, func(t *kmsg.TxnOffsetCommitRequestTopic) bool { return c.allowedTopic(acl.Read, t.Topic) })
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
			return c.commit(req, &up, req.Group, req.Generation, req.MemberID, req.InstanceID, true)
		}
		refused := *req
		refused.Topics = no
		resp := upstream.ErrorResponse(&refused, topicRefused).(*kmsg.TxnOffsetCommitResponse)
		if len(ok) == 0 {
			return resp, nil
		}
		kresp, err := c.commit(client, &up, req.Group, req.Generation, req.MemberID, req.InstanceID, true)
		if err != nil {
			return nil, err
		}
		got := kresp.(*kmsg.TxnOffsetCommitResponse)
		got.Topics = append(got.Topics, resp.Topics...)
		return got, nil
	}
}
