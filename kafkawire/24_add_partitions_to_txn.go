package kafkawire

// AddPartitionsToTxn, key 24.
//
// Forwarded to upstream's transaction coordinator for the transactional id,
// which kgo finds (and splits batched requests by). Upstream decides and
// writes the transaction markers, so read_committed readers, direct or
// through meshka's caches, see each transaction as upstream decided it.

func init() { register(24, 0, maxOf(24), forward(false, nil)) }
