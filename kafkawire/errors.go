package kafkawire

import "github.com/meshka/meshka/upstream"

// errCode is the Kafka error code a client should see for err.
func errCode(err error) int16 { return upstream.ErrCode(err) }
