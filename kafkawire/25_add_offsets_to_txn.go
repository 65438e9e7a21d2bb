package kafkawire

// AddOffsetsToTxn, key 25.
//
// Forwarded at the client's version to upstream's transaction coordinator
// for the transactional id. With ACLs, the transactional id needs WRITE
// (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and the group READ (else
// GROUP_AUTHORIZATION_FAILED).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/upstream"
)

func init() { register(25, 0, maxOf(25), handleAddOffsetsToTxn) }

func handleAddOffsetsToTxn(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.AddOffsetsToTxnRequest)
	switch {
	case !c.allowed(acl.Write, acl.TransactionalID, req.TransactionalID):
		return now(upstream.ErrorResponse(req, txnRefused), nil)
	case !c.allowed(acl.Read, acl.Group, req.Group):
		return now(upstream.ErrorResponse(req, groupRefused), nil)
	}
	return forward(nil)(c, req)
}
