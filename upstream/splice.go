package upstream

import (
	"encoding/binary"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceEncoder encodes a Produce request for writev: the records, which
// already sit in the client's request frame, are referenced as segments of
// their own rather than copied into the encoding. kmsg stays the only
// encoder: the request is encoded once with every partition's Records
// empty and once with them null. The two encodings have the same length
// and differ exactly in the records' length prefixes (4 bytes, 0 vs -1,
// before v9; one uvarint byte, 1 vs 0, from v9), so comparing them finds
// each prefix whatever the fields around it hold; each is rewritten with
// the real length and the records follow. Owned by one pipe's writer.
type produceEncoder struct {
	fmt     *kmsg.RequestFormatter
	empty   []byte   // the trial encoding with empty records
	null    []byte   // the trial encoding with null records
	head    []byte   // the encoding without records
	records [][]byte // each partition's records, in encoding order
	cuts    []int    // where in head each partition's records go
	iov     net.Buffers
}

var emptyRecords = []byte{}

// encode returns the segments of req's frame, valid until the next call.
func (e *produceEncoder) encode(req *kmsg.ProduceRequest, corr int32) net.Buffers {
	e.records = e.records[:0]
	for ti := range req.Topics {
		for pi := range req.Topics[ti].Partitions {
			rp := &req.Topics[ti].Partitions[pi]
			e.records = append(e.records, rp.Records)
			rp.Records = emptyRecords
		}
	}
	// AppendRequest writes the frame's size at the start of the slice it
	// is given, so each encoding gets a buffer of its own.
	e.empty = e.fmt.AppendRequest(e.empty[:0], req, corr)
	setRecords(req, nil)
	e.null = e.fmt.AppendRequest(e.null[:0], req, corr)
	e.restore(req)
	empty, null, n := e.empty, e.null, len(e.empty)

	prefixLen, emptyPrefix := 4, "\x00\x00\x00\x00"
	if req.IsFlexible() {
		prefixLen, emptyPrefix = 1, "\x01"
	}
	e.head, e.cuts = e.head[:0], e.cuts[:0]
	i, from := 0, 0
	for _, r := range e.records {
		for i < n && empty[i] == null[i] {
			i++
		}
		if len(null) != n || i+prefixLen > n || string(empty[i:i+prefixLen]) != emptyPrefix {
			// Not kmsg's layout as this code knows it: never write a
			// wrong frame, copy instead.
			return e.copyAll(req, corr)
		}
		e.head = append(e.head, empty[from:i]...)
		if req.IsFlexible() {
			e.head = binary.AppendUvarint(e.head, uint64(len(r))+1)
		} else {
			e.head = binary.BigEndian.AppendUint32(e.head, uint32(len(r)))
		}
		e.cuts = append(e.cuts, len(e.head))
		i += prefixLen
		from = i
	}
	e.head = append(e.head, empty[from:]...)

	size := len(e.head) - 4
	for _, r := range e.records {
		size += len(r)
	}
	binary.BigEndian.PutUint32(e.head, uint32(size))
	e.iov = e.iov[:0]
	at := 0
	for k, r := range e.records {
		e.iov = append(e.iov, e.head[at:e.cuts[k]], r)
		at = e.cuts[k]
	}
	e.iov = append(e.iov, e.head[at:])
	return e.iov
}

// restore puts each partition's records back.
func (e *produceEncoder) restore(req *kmsg.ProduceRequest) {
	k := 0
	for ti := range req.Topics {
		for pi := range req.Topics[ti].Partitions {
			req.Topics[ti].Partitions[pi].Records = e.records[k]
			k++
		}
	}
}

func (e *produceEncoder) copyAll(req *kmsg.ProduceRequest, corr int32) net.Buffers {
	e.head = e.fmt.AppendRequest(e.head[:0], req, corr)
	e.iov = append(e.iov[:0], e.head)
	return e.iov
}

// release drops references to records and oversized buffers.
func (e *produceEncoder) release() {
	clear(e.records)
	clear(e.iov[:cap(e.iov)])
	if cap(e.empty) > pipeKeepBuf || cap(e.null) > pipeKeepBuf {
		e.empty, e.null = nil, nil
	}
	if cap(e.head) > pipeKeepBuf {
		e.head = nil
	}
}

func setRecords(req *kmsg.ProduceRequest, r []byte) {
	for ti := range req.Topics {
		for pi := range req.Topics[ti].Partitions {
			req.Topics[ti].Partitions[pi].Records = r
		}
	}
}
