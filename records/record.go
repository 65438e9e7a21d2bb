package records

// Record is one record of a batch, decoded. Key, Value and header values
// alias the buffer it was decoded from (the batch, or its decompressed
// records) and must not be modified.
type Record struct {
	Offset    int64
	Timestamp int64 // milliseconds since the Unix epoch
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Header is one record header. A header's value may be nil (Kafka's null).
type Header struct {
	Key   string
	Value []byte
}
