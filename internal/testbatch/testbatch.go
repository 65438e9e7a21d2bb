// Package testbatch builds record batches for tests and benchmarks with
// kmsg's encoders, so the bytes are what a client puts on the wire.
package testbatch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode returns the magic 2 batch hdr holding recs. It numbers the
// records' offset deltas from 0 and sets what the records decide: each
// record's length, and the batch's length, last offset delta, record count
// and CRC-32C. Every other field of hdr and of the records is kept as
// given. It panics when kmsg cannot read the result back, which can only
// be a caller's mistake such as no records.
func Encode(hdr kmsg.RecordBatch, recs ...kmsg.Record) []byte {
	var raw []byte
	for i := range recs {
		r := recs[i]
		r.OffsetDelta = int32(i)
		r.Length = 0
		r.Length = int32(len(r.AppendTo(nil)) - 1) // what follows the length; 0 takes one byte
		raw = r.AppendTo(raw)
	}
	hdr.Magic = 2
	hdr.Length = int32(49 + len(raw)) // the fields after Length, then the records
	hdr.LastOffsetDelta = int32(len(recs) - 1)
	hdr.NumRecords = int32(len(recs))
	hdr.Records = raw
	hdr.CRC = 0
	out := hdr.AppendTo(nil)
	// The CRC covers everything after itself: from the attributes on.
	hdr.CRC = int32(crc32.Checksum(out[21:], castagnoli))
	out = hdr.AppendTo(out[:0])

	var back kmsg.RecordBatch
	if err := back.ReadFrom(out); err != nil || len(recs) == 0 || int(back.Length) != len(out)-12 {
		panic(fmt.Sprintf("testbatch: the batch of %d records does not read back: %v", len(recs), err))
	}
	return out
}

// NoProducer is the header of a batch from a producer without a producer
// id (not idempotent): no id, epoch or sequence, no leader epoch.
func NoProducer() kmsg.RecordBatch {
	return kmsg.RecordBatch{PartitionLeaderEpoch: -1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1}
}

// Values are records holding each value, nothing else.
func Values(values ...string) []kmsg.Record {
	recs := make([]kmsg.Record, len(values))
	for i, v := range values {
		recs[i].Value = []byte(v)
	}
	return recs
}

// Decode returns the records of an uncompressed batch.
func Decode(b *kmsg.RecordBatch) ([]kmsg.Record, error) {
	if b.Attributes&0x07 != 0 {
		return nil, fmt.Errorf("testbatch: compressed batch (codec %d)", b.Attributes&0x07)
	}
	buf := b.Records
	out := make([]kmsg.Record, 0, b.NumRecords)
	for range b.NumRecords {
		n, w := binary.Varint(buf)
		if w <= 0 || n < 0 || int64(len(buf)-w) < n {
			return out, fmt.Errorf("testbatch: bad record length")
		}
		var r kmsg.Record
		if err := r.ReadFrom(buf[:w+int(n)]); err != nil {
			return out, err
		}
		out = append(out, r)
		buf = buf[w+int(n):]
	}
	return out, nil
}
