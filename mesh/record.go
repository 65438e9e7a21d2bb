package mesh

import (
	"time"

	"github.com/meshka/meshka/records"
)

// Record is one Kafka record as the API takes and gives it.
//
// A record a Subscription delivers is shared by every subscriber of its
// partition on the node: its Key, Value and header values must not be
// modified. A record given to a Producer must not be modified until the
// producer has answered it.
type Record struct {
	Topic string
	// Partition is the record's partition. A record produced with
	// Partition -1 is placed by its key (see KeyPartition), or, without
	// a key, on the partition the producer is filling.
	Partition int32
	Offset    int64 // set on delivery and when a produce is acknowledged
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time // the zero time: now, when produced
}

// Header is one record header; a nil Value is Kafka's null.
type Header = records.Header

// HeaderValue is the value of the record's first header named key.
func (r *Record) HeaderValue(key string) ([]byte, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}
