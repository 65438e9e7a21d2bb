package kafkawire

// AlterConfigs, key 33.
//
// Forwarded at the client's version: broker resources to the upstream
// broker they name, topic resources to any broker.

func init() { register(33, 0, maxOf(33), forward(nil)) }
