package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A handler decodes nothing and writes nothing: it gets the decoded request
// on the connection's read goroutine, does whatever must happen in request
// order there (such as handing batches to partition actors), and returns
// the rest of the work, which the write goroutine runs in request order.
// A nil response writes nothing (acks=0 produce); an error closes the
// connection.
type handler func(c *conn, req kmsg.Request) (finish func() (kmsg.Response, error))

type api struct {
	min, max int16
	fn       handler
}

// apis is filled by each API file's init, which names the versions that
// file's code is written for.
var apis = map[int16]api{}

func register(key, min, max int16, fn handler) {
	if max > kmsg.RequestForKey(key).MaxVersion() {
		panic("kafkawire: registered above kmsg's version for key " + kmsg.NameForKey(key))
	}
	apis[key] = api{min: min, max: max, fn: fn}
}

// now wraps a response already computed.
func now(resp kmsg.Response, err error) func() (kmsg.Response, error) {
	return func() (kmsg.Response, error) { return resp, err }
}
