package kafkawire

// AlterConfigs, key 33.
//
// Forwarded to upstream and re-encoded at the client's version.

func init() { register(33, 0, maxOf(33), forward(false, nil)) }
