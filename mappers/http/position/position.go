// Package position encodes where a reader is in a topic, per partition
// the offset of the next record it has not seen, as the short opaque
// string HTTP carries it in: a fetch's ETag and an SSE event's id. Any
// node decodes what any node encoded, so a client resumes anywhere.
//
// The encoding: a version byte (1), the number of partitions, then per
// partition, in partition order, the partition and the offset as
// zig-zag varints; all base64url without padding.
package position

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// version is the encoding's first byte.
const version = 1

// MaxPartitions bounds what Decode accepts, so that a client's string
// cannot make it allocate without bound.
const MaxPartitions = 100000

// ErrInvalid is Decode's error for a string Encode did not make.
var ErrInvalid = errors.New("position: not a position meshka wrote")

// Encode is offsets, by partition, as a position string.
func Encode(offsets map[int32]int64) string {
	b := make([]byte, 0, 2+len(offsets)*6)
	b = append(b, version)
	b = binary.AppendUvarint(b, uint64(len(offsets)))
	for _, p := range slices.Sorted(maps.Keys(offsets)) {
		b = binary.AppendVarint(b, int64(p))
		b = binary.AppendVarint(b, offsets[p])
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode reads a string Encode made.
func Decode(s string) (map[int32]int64, error) {
	if len(s) > 4*(2+MaxPartitions*20)/3 {
		return nil, fmt.Errorf("%w: %d bytes", ErrInvalid, len(s))
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != version {
		return nil, ErrInvalid
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > MaxPartitions || n > uint64(len(b)) {
		return nil, ErrInvalid
	}
	b = b[k:]
	out := make(map[int32]int64, n)
	last := int64(-1)
	for range n {
		p, k := binary.Varint(b)
		if k <= 0 || p < 0 || p > 1<<31-1 || p <= last {
			return nil, ErrInvalid
		}
		b = b[k:]
		o, k := binary.Varint(b)
		if k <= 0 || o < 0 {
			return nil, ErrInvalid
		}
		b = b[k:]
		out[int32(p)] = o
		last = p
	}
	if len(b) != 0 || Encode(out) != s {
		return nil, ErrInvalid // trailing bytes, or varints not as Encode writes them
	}
	return out, nil
}
