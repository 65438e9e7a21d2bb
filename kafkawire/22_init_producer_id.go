package kafkawire

// InitProducerId, key 22.
//
// Forwarded at the client's version: with a transactional id to upstream's
// transaction coordinator, without one to any upstream broker. Producer ids
// and epochs are upstream's, so idempotent and transactional batches
// forwarded byte for byte stay valid; the epoch recovery of v3+ (KIP-360)
// and KIP-890's errors of v5 happen only for clients that speak them.

func init() { register(22, 0, maxOf(22), forward(nil)) }
