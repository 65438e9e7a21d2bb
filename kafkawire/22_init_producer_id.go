package kafkawire

// InitProducerId, key 22.
//
// Forwarded: with a transactional id to upstream's transaction coordinator,
// without one to any upstream broker. Producer ids and epochs are
// upstream's, so idempotent and transactional batches forwarded byte for
// byte stay valid.

func init() { register(22, 0, maxOf(22), forward(false, nil)) }
