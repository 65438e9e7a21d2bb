package kafkawire

// IncrementalAlterConfigs, key 44.
//
// Forwarded at the client's version: broker resources to the upstream
// broker they name, topic resources to any broker.

func init() { register(44, 0, maxOf(44), forward(nil)) }
