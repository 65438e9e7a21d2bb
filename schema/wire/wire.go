// Package wire reads and writes the header that Confluent's serializers put
// before a record's payload: a magic byte 0, the schema id, and for Protobuf
// the path of the message within its schema file.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Magic is the first byte of every framed payload.
const Magic byte = 0

// MaxIndexes bounds the message-index path read from a record: a .proto
// nests messages a few levels deep, never thousands, so a longer path is
// garbage and is refused before anything is allocated for it.
const MaxIndexes = 64

// HeaderSize is the length of the header without a message-index path.
const HeaderSize = 5

// Errors Decode wraps; match them with errors.Is.
var (
	ErrShort   = errors.New("schema wire: short input")
	ErrMagic   = errors.New("schema wire: bad magic byte")
	ErrVarint  = errors.New("schema wire: bad varint in message-index path")
	ErrIndexes = errors.New("schema wire: bad message-index path")
)

// Header is what precedes a payload. Indexes is nil for Avro and JSON
// Schema; for Protobuf it is the path of the message in its file, [0] for
// the first top-level message.
type Header struct {
	ID      uint32
	Indexes []int
}

// Append appends h's encoding to dst.
func (h Header) Append(dst []byte) []byte {
	return Append(dst, h.ID, h.Indexes)
}

// Append appends the header of a payload written with schema id to dst.
// With indexes nil no message-index path is written (Avro, JSON Schema);
// otherwise the path is written as Protobuf's serializers do, with [0] (and
// an empty path) as the single byte 0.
func Append(dst []byte, id uint32, indexes []int) []byte {
	dst = append(dst, Magic)
	dst = binary.BigEndian.AppendUint32(dst, id)
	if indexes == nil {
		return dst
	}
	if len(indexes) == 0 || (len(indexes) == 1 && indexes[0] == 0) {
		return append(dst, 0)
	}
	dst = binary.AppendVarint(dst, int64(len(indexes)))
	for _, i := range indexes {
		dst = binary.AppendVarint(dst, int64(i))
	}
	return dst
}

// Decode splits b into its schema id, the message-index path (when protobuf
// is true; nil otherwise) and the payload, which aliases b.
func Decode(b []byte, protobuf bool) (id uint32, indexes []int, payload []byte, err error) {
	if len(b) < HeaderSize {
		return 0, nil, nil, fmt.Errorf("%w: %d bytes, the header needs %d", ErrShort, len(b), HeaderSize)
	}
	if b[0] != Magic {
		return 0, nil, nil, fmt.Errorf("%w: %#02x, want %#02x", ErrMagic, b[0], Magic)
	}
	id = binary.BigEndian.Uint32(b[1:5])
	b = b[HeaderSize:]
	if !protobuf {
		return id, nil, b, nil
	}
	n, b, err := varint(b)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w: the count: %v", ErrVarint, err)
	}
	switch {
	case n == 0:
		return id, []int{0}, b, nil
	case n < 0 || n > MaxIndexes:
		return 0, nil, nil, fmt.Errorf("%w: %d indexes, want 1 to %d", ErrIndexes, n, MaxIndexes)
	case n > int64(len(b)):
		return 0, nil, nil, fmt.Errorf("%w: %d indexes announced, %d bytes left", ErrShort, n, len(b))
	}
	indexes = make([]int, n)
	for i := range indexes {
		var v int64
		if v, b, err = varint(b); err != nil {
			return 0, nil, nil, fmt.Errorf("%w: index %d: %v", ErrVarint, i, err)
		}
		if v < 0 || v > 1<<31-1 {
			return 0, nil, nil, fmt.Errorf("%w: index %d is %d", ErrIndexes, i, v)
		}
		indexes[i] = int(v)
	}
	return id, indexes, b, nil
}

// varint reads one zig-zag varint, refusing truncated and over-long ones.
func varint(b []byte) (int64, []byte, error) {
	v, n := binary.Varint(b)
	switch {
	case n == 0:
		return 0, nil, errors.New("truncated")
	case n < 0:
		return 0, nil, errors.New("overflows 64 bits")
	}
	return v, b[n:], nil
}
