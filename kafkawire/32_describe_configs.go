package kafkawire

// DescribeConfigs, key 32.
//
// Forwarded at the client's version: broker resources to the upstream
// broker they name, topic resources to any broker.

func init() { register(32, 0, maxOf(32), forward(nil)) }
