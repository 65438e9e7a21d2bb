package kafkawire

// AddOffsetsToTxn, key 25.
//
// Forwarded to upstream's transaction coordinator for the transactional id,
// which kgo finds (and splits batched requests by). Upstream decides and
// writes the transaction markers, so read_committed readers, direct or
// through meshka's caches, see each transaction as upstream decided it.

func init() { register(25, 0, maxOf(25), forward(false, nil)) }
