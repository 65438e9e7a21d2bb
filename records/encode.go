package records

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"slices"
)

// EncodeBatch returns one magic 2 batch holding recs in order, its records
// compressed with codec, ready for a ProduceRequest: base offset 0 and
// offset deltas 0 to len(recs)-1 (the broker assigns offsets, so a
// Record's Offset is ignored), timestamps as deltas from the first
// record's (CreateTime), and no producer id, epoch, sequence or leader
// epoch (-1 each). A nil key, value or header value is encoded as null.
func EncodeBatch(recs []Record, codec Codec) ([]byte, error) {
	if len(recs) == 0 {
		return nil, errors.New("records: a batch needs at least one record")
	}
	if !codec.known() {
		return nil, fmt.Errorf("records: unknown compression codec %d", int8(codec))
	}
	if len(recs) > math.MaxInt32 {
		return nil, fmt.Errorf("records: %d records, more than a batch counts", len(recs))
	}
	// What a batch holds after its length field, then the records, must
	// fit the int32 length; compressed records must also decompress
	// within the bound every reader (this one included) applies.
	limit := math.MaxInt32 - (headerLenV2 - 12)
	if codec != CodecNone {
		limit = MaxDecompressed
	}
	first, maxTS := recs[0].Timestamp, recs[0].Timestamp
	size := 0
	for i := range recs {
		r := &recs[i]
		body := recordBodyLen(r, r.Timestamp-first, int64(i))
		if size += varintLen(int64(body)) + body; size > limit {
			return nil, fmt.Errorf("records: the %d records encode to more than %d bytes", len(recs), limit)
		}
		maxTS = max(maxTS, r.Timestamp)
	}

	var out []byte
	if codec == CodecNone {
		out = make([]byte, headerLenV2, headerLenV2+size)
		out = appendRecords(out, recs, first)
	} else {
		// Records and their compressed form go to scratch buffers; the
		// batch is then allocated once at its size.
		rawp, compp := getScratch(), getScratch()
		raw := appendRecords(slices.Grow((*rawp)[:0], size), recs, first)
		comp, err := compress(codec, append((*compp)[:0], make([]byte, headerLenV2)...), raw)
		if err == nil {
			out = make([]byte, len(comp))
			copy(out, comp)
		}
		putScratch(rawp, raw)
		putScratch(compp, comp)
		if err != nil {
			return nil, fmt.Errorf("records: %s: %w", codec, err)
		}
	}

	be := binary.BigEndian
	be.PutUint64(out, 0) // base offset
	be.PutUint32(out[offLength:], uint32(len(out)-12))
	be.PutUint32(out[offLeaderEp:], math.MaxUint32) // -1
	out[offMagic] = 2
	be.PutUint16(out[offAttrs:], uint16(codec)) // CreateTime, not transactional, not control
	be.PutUint32(out[offLastDelta:], uint32(len(recs)-1))
	be.PutUint64(out[offFirstTS:], uint64(first))
	be.PutUint64(out[offMaxTS:], uint64(maxTS))
	be.PutUint64(out[offProducerID:], math.MaxUint64) // -1
	be.PutUint16(out[offEpoch:], math.MaxUint16)
	be.PutUint32(out[offSequence:], math.MaxUint32)
	be.PutUint32(out[offCount:], uint32(len(recs)))
	be.PutUint32(out[offCRC:], crc32.Checksum(out[offAttrs:], castagnoli))
	return out, nil
}

func appendRecords(dst []byte, recs []Record, first int64) []byte {
	for i := range recs {
		r := &recs[i]
		tsDelta := r.Timestamp - first
		dst = binary.AppendVarint(dst, int64(recordBodyLen(r, tsDelta, int64(i))))
		dst = append(dst, 0) // attributes
		dst = binary.AppendVarint(dst, tsDelta)
		dst = binary.AppendVarint(dst, int64(i))
		dst = appendField(dst, r.Key)
		dst = appendField(dst, r.Value)
		dst = binary.AppendVarint(dst, int64(len(r.Headers)))
		for _, h := range r.Headers {
			dst = binary.AppendVarint(dst, int64(len(h.Key)))
			dst = append(dst, h.Key...)
			dst = appendField(dst, h.Value)
		}
	}
	return dst
}

// recordBodyLen is the length of a record after its length field.
func recordBodyLen(r *Record, tsDelta, offDelta int64) int {
	n := 1 + varintLen(tsDelta) + varintLen(offDelta) + fieldLen(r.Key) + fieldLen(r.Value) + varintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		n += varintLen(int64(len(h.Key))) + len(h.Key) + fieldLen(h.Value)
	}
	return n
}

func appendField(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	return append(binary.AppendVarint(dst, int64(len(b))), b...)
}

func fieldLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

// varintLen is the size of v as a zigzag varint.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	return (bits.Len64(u|1) + 6) / 7
}
