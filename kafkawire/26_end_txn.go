package kafkawire

// EndTxn, key 26.
//
// Forwarded at the client's version to upstream's transaction coordinator
// for the transactional id. The version matters: from v5 (KIP-890) the
// coordinator bumps the producer epoch on every commit and abort and
// returns the new one; a client speaking v4 or lower cannot learn it, so
// sent at v5 its next transaction would be fenced. With ACLs, the
// transactional id needs WRITE (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/upstream"
)

func init() { register(26, 0, maxOf(26), handleEndTxn) }

func handleEndTxn(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.EndTxnRequest)
	if !c.allowed(acl.Write, acl.TransactionalID, req.TransactionalID) {
		return now(upstream.ErrorResponse(req, txnRefused), nil)
	}
	return forward(nil)(c, req)
}
