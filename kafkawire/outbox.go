package kafkawire

import (
	"encoding/binary"
	"io"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// outbox gathers encoded answers for one write. Headers and ordinary
// responses are encoded into head; large byte fields that already live in
// memory (cached record batches) are referenced as their own segments and
// handed to the kernel with writev, never copied. Not safe for concurrent
// use: one write goroutine owns it between Get and release.
type outbox struct {
	head    []byte
	scratch []byte // a splicer's working space
	segs    []segment
	iov     net.Buffers
	size    int // bytes to write
}

// segment is head[start:end], or ext when ext is set.
type segment struct {
	ext        []byte
	start, end int
}

// splicer is a response that writes part of itself from buffers it does
// not copy (see splicedFetch).
type splicer interface {
	kmsg.Response
	splice(o *outbox, item *inflight)
}

var outboxes = sync.Pool{New: func() any { return new(outbox) }}

// maxPooledBuf bounds the buffers an outbox keeps in the pool: one large
// answer (a read-through fetch) must not pin its size in every pooled
// outbox.
const maxPooledBuf = 256 << 10

func (o *outbox) add(item *inflight, resp kmsg.Response) {
	if sp, ok := resp.(splicer); ok {
		sp.splice(o, item)
		return
	}
	start := len(o.head)
	o.head = appendResponse(o.head, item, resp)
	o.headSeg(start)
}

// headSeg adds head[start:] as the next segment, extending the previous
// one when it ends there.
func (o *outbox) headSeg(start int) {
	end := len(o.head)
	if end == start {
		return
	}
	o.size += end - start
	if n := len(o.segs); n > 0 && o.segs[n-1].ext == nil && o.segs[n-1].end == start {
		o.segs[n-1].end = end
		return
	}
	o.segs = append(o.segs, segment{start: start, end: end})
}

// extSeg adds b as the next segment; b must stay unmodified until the
// flush.
func (o *outbox) extSeg(b []byte) {
	if len(b) == 0 {
		return
	}
	o.size += len(b)
	o.segs = append(o.segs, segment{ext: b})
}

// flush writes every segment in order with one writev where the
// connection supports it.
func (o *outbox) flush(w io.Writer) error {
	for _, sg := range o.segs {
		if sg.ext != nil {
			o.iov = append(o.iov, sg.ext)
		} else {
			o.iov = append(o.iov, o.head[sg.start:sg.end])
		}
	}
	v := o.iov // WriteTo consumes the slice it is called on
	_, err := v.WriteTo(w)
	return err
}

// release empties the outbox, dropping its references to cached batches,
// and returns it to the pool.
func (o *outbox) release() {
	clear(o.segs)
	clear(o.iov[:cap(o.iov)])
	o.segs, o.iov = o.segs[:0], o.iov[:0]
	o.head, o.scratch, o.size = o.head[:0], o.scratch[:0], 0
	if cap(o.head) > maxPooledBuf {
		o.head = nil
	}
	if cap(o.scratch) > maxPooledBuf {
		o.scratch = nil
	}
	if cap(o.segs) > 1024 {
		o.segs, o.iov = nil, nil
	}
	outboxes.Put(o)
}

// appendResponse appends one response frame to dst.
func appendResponse(dst []byte, item *inflight, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(item.corrID))
	// ApiVersions answers with the v0 header even when flexible, so a
	// client that guessed too high a version can still read it.
	if resp.IsFlexible() && item.key != apiVersionsKey {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
