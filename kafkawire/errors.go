package kafkawire

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// errCode is the Kafka error code a client should see for err: Kafka's own
// when there is one, else a retriable timeout (upstream unreachable).
func errCode(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.RequestTimedOut.Code
}
