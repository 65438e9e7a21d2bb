package kafkawire

// ListOffsets, key 2.
//
// Every version kmsg knows, narrowed to upstream's by ApiVersions.
// Forwarded at the client's version to each partition's upstream leader
// (earliest, latest, by timestamp, max timestamp), so a v0 client gets
// upstream's own v0 answer (offsets before a time, by segment) and every
// error code is one its version defines.

func init() { register(2, 0, maxOf(2), forward(nil)) }
