// Package records reads the headers of Kafka record batches without decoding
// their records, so meshka can cache and forward batches byte for byte, and
// decodes and encodes the records themselves for the records API.
package records

import (
	"encoding/binary"
	"errors"
)

// Attribute bits of a v2 record batch.
const (
	attrTransactional = 0x10
	attrControl       = 0x20
)

// headerLenV2 is the fixed size of a magic 2 batch header, up to and
// including the record count.
const headerLenV2 = 61

// ErrCorrupt reports a batch whose header contradicts its own length.
var ErrCorrupt = errors.New("records: corrupt batch header")

// Batch is a view of one record batch (magic 2) or one message-set entry
// (magic 0 and 1) inside a larger buffer. Data aliases that buffer.
type Batch struct {
	Data       []byte
	Base       int64 // first offset in the batch
	Last       int64 // last offset in the batch
	Magic      int8
	Attrs      int16
	ProducerID int64
	Epoch      int32 // partition leader epoch; -1 for magic < 2
	MaxTS      int64
}

// Transactional reports whether the batch belongs to a transaction.
func (b *Batch) Transactional() bool { return b.Magic >= 2 && b.Attrs&attrTransactional != 0 }

// Control reports whether the batch is a transaction marker.
func (b *Batch) Control() bool { return b.Magic >= 2 && b.Attrs&attrControl != 0 }

// Next is the offset that follows the batch.
func (b *Batch) Next() int64 { return b.Last + 1 }

// Split walks buf and returns the complete batches it holds. A trailing
// partial batch, which brokers send when a size limit cuts a response, is
// returned as rest. Only a header that contradicts itself is an error.
func Split(buf []byte, dst []Batch) (batches []Batch, rest []byte, err error) {
	batches = dst[:0]
	for len(buf) >= 12 {
		size := int32(binary.BigEndian.Uint32(buf[8:12]))
		if size < 5 {
			// Every format holds at least a 4-byte field and the magic byte.
			return batches, buf, ErrCorrupt
		}
		total := 12 + int(size)
		if len(buf) < total {
			break
		}
		b := Batch{Data: buf[:total:total], Magic: int8(buf[16]), Epoch: -1}
		offset := int64(binary.BigEndian.Uint64(buf[0:8]))
		if b.Magic >= 2 {
			if total < headerLenV2 {
				return batches, buf, ErrCorrupt
			}
			b.Base = offset
			b.Epoch = int32(binary.BigEndian.Uint32(buf[12:16]))
			b.Attrs = int16(binary.BigEndian.Uint16(buf[21:23]))
			b.Last = offset + int64(int32(binary.BigEndian.Uint32(buf[23:27])))
			b.MaxTS = int64(binary.BigEndian.Uint64(buf[35:43]))
			b.ProducerID = int64(binary.BigEndian.Uint64(buf[43:51]))
		} else {
			// A legacy entry carries the offset of its last inner message.
			b.Base, b.Last, b.ProducerID = offset, offset, -1
		}
		if b.Last < b.Base {
			return batches, buf, ErrCorrupt
		}
		batches = append(batches, b)
		buf = buf[total:]
	}
	return batches, buf, nil
}

// ControlType returns the type of a control batch's marker: 0 for abort,
// 1 for commit. ok is false when the batch is not a readable marker.
func (b *Batch) ControlType() (typ int16, ok bool) {
	if !b.Control() || len(b.Data) < headerLenV2 {
		return 0, false
	}
	// A marker holds one record whose key is version(int16) type(int16).
	// Record: length varint, attributes int8, timestamp delta varint,
	// offset delta varint, key length varint, key.
	r := b.Data[headerLenV2:]
	var n int
	if _, n = binary.Varint(r); n <= 0 { // record length
		return 0, false
	}
	r = r[n:]
	if len(r) < 1 {
		return 0, false
	}
	r = r[1:]                // attributes
	for i := 0; i < 2; i++ { // timestamp delta, offset delta
		if _, n = binary.Varint(r); n <= 0 {
			return 0, false
		}
		r = r[n:]
	}
	keyLen, n := binary.Varint(r)
	if n <= 0 || keyLen < 4 || int64(len(r)-n) < keyLen {
		return 0, false
	}
	key := r[n:]
	return int16(binary.BigEndian.Uint16(key[2:4])), true
}

// ProducerID is the producer id of the first batch in buf, or -1 when it
// has none (a non-idempotent producer, or a legacy message set). A broker
// discards a re-sent batch of a producer with an id as a duplicate.
func ProducerID(buf []byte) int64 {
	if len(buf) < headerLenV2 || int8(buf[16]) < 2 {
		return -1
	}
	return int64(binary.BigEndian.Uint64(buf[43:51]))
}
