package kafkawire

// IncrementalAlterConfigs, key 44.
//
// Forwarded to upstream and re-encoded at the client's version.

func init() { register(44, 0, maxOf(44), forward(false, nil)) }
