package kafkawire

// AddPartitionsToTxn, key 24.
//
// v0-v3, forwarded at the client's version to upstream's transaction
// coordinator for the transactional id. v4+ batches many transactional ids
// and is sent by brokers, not clients (KIP-890), so it is not advertised.
// Upstream decides and writes the transaction markers, so read_committed
// readers, direct or through meshka's caches, see each transaction as
// upstream decided it. With ACLs, the transactional id needs WRITE (else
// every partition gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and so does
// each topic: when any is refused, its partitions get
// TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED, and
// nothing is added, as Kafka answers.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/internal/answer"
	"github.com/meshka/meshka/upstream"
)

func init() { register(24, 0, 3, handleAddPartitionsToTxn) }

func handleAddPartitionsToTxn(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.AddPartitionsToTxnRequest)
	if !c.allowed(acl.Write, acl.TransactionalID, req.TransactionalID) {
		return now(upstream.ErrorResponse(req, txnRefused), nil)
	}
	if _, no := split(req.Topics, func(t *kmsg.AddPartitionsToTxnRequestTopic) bool { return c.allowedTopic(acl.Write, t.Topic) }); no != nil {
		resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
		resp.Topics = answer.Each(req.Topics, func(rt *kmsg.AddPartitionsToTxnResponseTopic, t *kmsg.AddPartitionsToTxnRequestTopic) {
			rt.Topic = t.Topic
			code := kerr.OperationNotAttempted.Code
			if !c.allowedTopic(acl.Write, t.Topic) {
				code = topicRefused
			}
			rt.Partitions = answer.Each(t.Partitions, func(rp *kmsg.AddPartitionsToTxnResponseTopicPartition, p *int32) {
				rp.Partition, rp.ErrorCode = *p, code
			})
		})
		return now(resp, nil)
	}
	return forward(nil)(c, req)
}
