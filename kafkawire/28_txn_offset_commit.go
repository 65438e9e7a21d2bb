package kafkawire

// TxnOffsetCommit, key 28.
//
// The group actor checks generation and member (v3+, KIP-447); upstream's
// coordinator of the group then stores the offsets in the producer's
// transaction, as a standalone commit like OffsetCommit. It goes at the
// client's version: from v5 (KIP-890) the coordinator adds the group to the
// transaction itself, which a client still sending AddOffsetsToTxn must not
// be told it did; v6 names topics by id, as the client did.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(28, 0, maxOf(28), handleTxnOffsetCommit) }

func handleTxnOffsetCommit(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.TxnOffsetCommitRequest)
	up := *req
	up.Generation, up.MemberID, up.InstanceID = -1, "", nil
	return func() (kmsg.Response, error) {
		return c.commit(req, &up, req.Group, req.Generation, req.MemberID, req.InstanceID, true)
	}
}
