package kafkawire

// EndTxn, key 26.
//
// Forwarded at the client's version to upstream's transaction coordinator
// for the transactional id. The version matters: from v5 (KIP-890) the
// coordinator bumps the producer epoch on every commit and abort and
// returns the new one; a client speaking v4 or lower cannot learn it, so
// sent at v5 its next transaction would be fenced.

func init() { register(26, 0, maxOf(26), forward(nil)) }
