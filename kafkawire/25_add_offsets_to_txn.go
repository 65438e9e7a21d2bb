package kafkawire

// AddOffsetsToTxn, key 25.
//
// Forwarded at the client's version to upstream's transaction coordinator
// for the transactional id.

func init() { register(25, 0, maxOf(25), forward(nil)) }
