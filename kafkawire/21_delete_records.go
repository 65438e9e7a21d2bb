package kafkawire

// DeleteRecords, key 21.
//
// Forwarded to each partition's upstream leader. Partition caches learn the
// new log start offset from their streams.

func init() { register(21, 0, maxOf(21), forward(false, nil)) }
