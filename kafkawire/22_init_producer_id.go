package kafkawire

// InitProducerId, key 22.
//
// Forwarded at the client's version: with a transactional id to upstream's
// transaction coordinator, without one to any upstream broker. Producer ids
// and epochs are upstream's, so idempotent and transactional batches
// forwarded byte for byte stay valid; the epoch recovery of v3+ (KIP-360)
// and KIP-890's errors of v5 happen only for clients that speak them.
// With ACLs, a transactional producer needs WRITE on its transactional id
// (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED); an idempotent one needs
// IDEMPOTENT_WRITE on the cluster or WRITE on some topic, as Kafka has
// since KIP-679 (else CLUSTER_AUTHORIZATION_FAILED).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/upstream"
)

func init() { register(22, 0, maxOf(22), handleInitProducerID) }

func handleInitProducerID(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.InitProducerIDRequest)
	switch {
	case !c.aclOn():
	case req.TransactionalID != nil:
		if !c.allowed(acl.Write, acl.TransactionalID, *req.TransactionalID) {
			return now(upstream.ErrorResponse(req, txnRefused), nil)
		}
	case !c.allowedCluster(acl.IdempotentWrite) && !c.s.deps.ACL.AuthorizeAny(c.Principal(), c.host, acl.Write, acl.Topic):
		return now(upstream.ErrorResponse(req, clusterRefused), nil)
	}
	return forward(nil)(c, req)
}
