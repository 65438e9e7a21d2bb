package kafkawire

// OffsetForLeaderEpoch, key 23.
//
// Forwarded at the client's version to each partition's upstream leader:
// leader epochs are upstream's, so clients' log-truncation checks see the
// real history.

func init() { register(23, 0, maxOf(23), forward(nil)) }
