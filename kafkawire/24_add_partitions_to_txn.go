package kafkawire

// AddPartitionsToTxn, key 24.
//
// v0-v3, forwarded at the client's version to upstream's transaction
// coordinator for the transactional id. v4+ batches many transactional ids
// and is sent by brokers, not clients (KIP-890), so it is not advertised.
// Upstream decides and writes the transaction markers, so read_committed
// readers, direct or through meshka's caches, see each transaction as
// upstream decided it.

func init() { register(24, 0, 3, forward(nil)) }
