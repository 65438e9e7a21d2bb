package kafkawire

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// splicedFetch is a Fetch response whose cached record batches are
// written from the cache's own buffers: the cache holds them immutable, so
// the connection hands them to writev instead of copying every byte into
// one slice and again into the encoding.
type splicedFetch struct {
	*kmsg.FetchResponse
	// parts hold the batches, in the response's encoding order; their
	// RecordBatches are empty until written.
	parts []*fetchPart
	// held is the response budget its read-through records hold until
	// they are written.
	held int64
}

// heldBytes is what the response holds of the node's response budget.
func (f *splicedFetch) heldBytes() int64 { return f.held }

var _ splicer = (*splicedFetch)(nil)

// splice encodes the response into o with each spliced partition's
// batches in place. kmsg stays the only encoder: the response is encoded
// once with those partitions' RecordBatches empty and once with them
// null. The two encodings have the same length and differ exactly in
// those partitions' length prefixes (4 bytes, 0 vs -1, before v12; one
// uvarint byte, 1 vs 0, from v12), so comparing them finds each prefix,
// whatever the fields around it hold. Each prefix is rewritten with the
// real length and the batches follow as segments of their own.
func (f *splicedFetch) splice(o *outbox, item *inflight) {
	buf := appendResponse(o.scratch[:0], item, f.FetchResponse)
	n := len(buf)
	for _, p := range f.parts {
		p.out.RecordBatches = nil
	}
	buf = appendResponse(buf, item, f.FetchResponse)
	for _, p := range f.parts {
		p.out.RecordBatches = []byte{}
	}
	o.scratch = buf
	empty, null := buf[:n], buf[n:]

	prefixLen, emptyPrefix := 4, "\x00\x00\x00\x00"
	if f.IsFlexible() {
		prefixLen, emptyPrefix = 1, "\x01"
	}
	i := 0
	for _, p := range f.parts {
		for i < n && empty[i] == null[i] {
			i++
		}
		if len(null) != n || i+prefixLen > n || string(empty[i:i+prefixLen]) != emptyPrefix {
			// Not kmsg's layout as this code knows it: never write a
			// wrong frame, copy instead.
			f.copyAll(o, item)
			return
		}
		p.prefixAt = i
		i += prefixLen
	}

	flexible := f.IsFlexible()
	frameStart := len(o.head)
	size, from := n-4, 0 // the frame's size field counts what follows it
	for _, p := range f.parts {
		segStart := len(o.head)
		o.head = append(o.head, empty[from:p.prefixAt]...)
		total := 0
		for _, b := range p.batches {
			total += len(b)
		}
		before := len(o.head)
		if flexible {
			o.head = binary.AppendUvarint(o.head, uint64(total)+1)
		} else {
			o.head = binary.BigEndian.AppendUint32(o.head, uint32(total))
		}
		size += len(o.head) - before - prefixLen + total
		o.headSeg(segStart)
		for _, b := range p.batches {
			o.extSeg(b)
		}
		from = p.prefixAt + prefixLen
	}
	segStart := len(o.head)
	o.head = append(o.head, empty[from:]...)
	o.headSeg(segStart)
	binary.BigEndian.PutUint32(o.head[frameStart:], uint32(size))
}

// copyAll encodes the response with its batches copied in, as every other
// response is.
func (f *splicedFetch) copyAll(o *outbox, item *inflight) {
	for _, p := range f.parts {
		out := make([]byte, 0, p.bytes)
		for _, b := range p.batches {
			out = append(out, b...)
		}
		p.out.RecordBatches = out
	}
	start := len(o.head)
	o.head = appendResponse(o.head, item, f.FetchResponse)
	o.headSeg(start)
}
