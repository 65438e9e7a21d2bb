package records

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strings"
)

// Offsets of a magic 2 batch's header fields.
const (
	offLength     = 8
	offLeaderEp   = 12
	offMagic      = 16
	offCRC        = 17
	offAttrs      = 21 // the CRC covers the batch from here on
	offLastDelta  = 23
	offFirstTS    = 27
	offMaxTS      = 35
	offProducerID = 43
	offEpoch      = 51
	offSequence   = 53
	offCount      = 57
)

// attrLogAppendTime marks a batch whose records all carry the broker's
// append time, the batch's max timestamp, rather than their own.
const attrLogAppendTime = 0x08

// minRecordLen is the smallest record: its length, attributes, timestamp
// delta, offset delta, key length, value length and header count, one
// byte each.
const minRecordLen = 7

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrMalformed reports a batch that contradicts itself: truncated, a CRC
// that does not match, a count or length that lies, a varint that
// overflows, a compressed section that does not decompress.
var ErrMalformed = errors.New("records: malformed batch")

// ErrMagic reports a batch in a format other than magic 2, which
// DecodeBatch does not read.
var ErrMagic = errors.New("records: not a magic 2 batch")

// DecodeBatch decodes one complete magic 2 batch, as Split returns it, and
// appends its records to dst. A control batch (a transaction marker) holds
// no records for meshka's readers and appends none.
//
// The records' keys, values and header values alias batch when it is
// uncompressed, and otherwise a buffer allocated for this batch alone:
// batch must not change while they are in use, and nothing, this function
// included, ever writes to that memory again. Records already in dst, or
// handed out from earlier calls, stay valid: elements past len(dst) are
// overwritten by the append, but no memory their fields point to is
// reused. Header keys of the whole batch share one string allocation, and
// its headers one slice.
//
// On any error, dst is returned as it was.
func DecodeBatch(batch []byte, dst []Record) ([]Record, error) {
	return decodeBatch(batch, dst, true, nil)
}

// DecodeProduced is DecodeBatch without the CRC check, for a batch a
// producer sent that is forwarded upstream as it is, which checks the CRC
// itself (CORRUPT_MESSAGE): checks that read the records before they go
// (the topics rules) need not pay for it twice. Every length and count is
// checked as DecodeBatch checks them. With scratch not nil, a compressed
// batch is decompressed into *scratch, grown as needed and left there
// for the next call: its records' fields alias it, and are read only
// until scratch is used again.
func DecodeProduced(batch []byte, dst []Record, scratch *[]byte) ([]Record, error) {
	return decodeBatch(batch, dst, false, scratch)
}

func decodeBatch(batch []byte, dst []Record, crc bool, scratch *[]byte) ([]Record, error) {
	if len(batch) <= offMagic {
		return dst, fmt.Errorf("%w: %d bytes, less than a batch header", ErrMalformed, len(batch))
	}
	base := int64(binary.BigEndian.Uint64(batch))
	if magic := int8(batch[offMagic]); magic != 2 {
		return dst, fmt.Errorf("%w: batch at offset %d has magic %d", ErrMagic, base, magic)
	}
	if len(batch) < headerLenV2 {
		return dst, fmt.Errorf("%w: batch at offset %d: %d bytes, less than the %d of a header", ErrMalformed, base, len(batch), headerLenV2)
	}
	if length := int32(binary.BigEndian.Uint32(batch[offLength:])); int64(length) != int64(len(batch)-12) {
		return dst, fmt.Errorf("%w: batch at offset %d: length field says %d bytes follow it, %d do", ErrMalformed, base, length, len(batch)-12)
	}
	if crc {
		if want, got := binary.BigEndian.Uint32(batch[offCRC:]), crc32.Checksum(batch[offAttrs:], castagnoli); want != got {
			return dst, fmt.Errorf("%w: batch at offset %d: CRC-32C is %08x, the batch says %08x", ErrMalformed, base, got, want)
		}
	}
	attrs := binary.BigEndian.Uint16(batch[offAttrs:])
	if attrs&attrControl != 0 {
		return dst, nil
	}
	codec := Codec(attrs & attrCodec)
	if !codec.known() {
		return dst, fmt.Errorf("%w: batch at offset %d: unknown compression codec %d", ErrMalformed, base, int8(codec))
	}
	count := int32(binary.BigEndian.Uint32(batch[offCount:]))
	sec := batch[headerLenV2:]
	if codec != CodecNone && len(sec) > 0 {
		var err error
		if scratch != nil {
			sec, err = decompressInto(codec, sec, *scratch)
			if err == nil {
				*scratch = sec
			}
		} else {
			sec, err = decompress(codec, sec)
		}
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return dst, fmt.Errorf("records: batch at offset %d (%s): %w", base, codec, ErrTooLarge)
			}
			return dst, fmt.Errorf("%w: batch at offset %d: %s records: %w", ErrMalformed, base, codec, err)
		}
	}
	if count < 0 || int64(count) > int64(len(sec)/minRecordLen) {
		return dst, fmt.Errorf("%w: batch at offset %d: %d records cannot fit in %d bytes", ErrMalformed, base, count, len(sec))
	}
	// A first walk checks every record and counts their headers, so the
	// second can fill them in with one allocation for all the headers
	// and one for all their keys.
	n, err := walk(sec, int(count), nil)
	if err != nil {
		return dst, fmt.Errorf("%w: batch at offset %d (%s): %w", ErrMalformed, base, codec, err)
	}
	f := filler{
		out:     slices.Grow(dst, int(count)),
		base:    base,
		firstTS: int64(binary.BigEndian.Uint64(batch[offFirstTS:])),
	}
	if attrs&attrLogAppendTime != 0 {
		f.logAppend = true
		f.maxTS = int64(binary.BigEndian.Uint64(batch[offMaxTS:]))
	}
	if n.headers > 0 {
		f.headers = make([]Header, n.headers)
	}
	f.keys.Grow(n.keyBytes)
	if _, err := walk(sec, int(count), &f); err != nil {
		return dst, fmt.Errorf("%w: batch at offset %d (%s): %w", ErrMalformed, base, codec, err)
	}
	return f.out, nil
}

// tally is what a checking walk counts.
type tally struct{ headers, keyBytes int }

// filler is where a filling walk puts the records.
type filler struct {
	out       []Record
	headers   []Header // the batch's headers still unused
	keys      strings.Builder
	base      int64
	firstTS   int64
	logAppend bool
	maxTS     int64
}

// key returns b as a string held in the batch's one allocation for keys.
func (f *filler) key(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	f.keys.Write(b)
	all := f.keys.String() // what was written before stays as it is
	return all[len(all)-len(b):]
}

// walk reads count records from sec, which must hold exactly those. With
// f nil it only checks them and counts their headers; with f it also
// stores them in f.
func walk(sec []byte, count int, f *filler) (tally, error) {
	var t tally
	for i := range count {
		length, w := varint(sec)
		if w <= 0 {
			return t, fmt.Errorf("record %d of %d: length: %w", i, count, varintErr(w))
		}
		sec = sec[w:]
		if length < 1 || length > int64(len(sec)) {
			return t, fmt.Errorf("record %d of %d: length %d, with %d bytes left", i, count, length, len(sec))
		}
		r := sec[1:length] // after the attributes, unused since magic 2
		sec = sec[length:]

		tsDelta, w := varint(r)
		if w <= 0 {
			return t, fmt.Errorf("record %d of %d: timestamp delta: %w", i, count, varintErr(w))
		}
		r = r[w:]
		offDelta, w := varint(r)
		if w <= 0 {
			return t, fmt.Errorf("record %d of %d: offset delta: %w", i, count, varintErr(w))
		}
		if offDelta < 0 || offDelta > math.MaxInt32 {
			return t, fmt.Errorf("record %d of %d: offset delta %d", i, count, offDelta)
		}
		r = r[w:]
		key, r, err := field(r, "key")
		if err != nil {
			return t, fmt.Errorf("record %d of %d: %w", i, count, err)
		}
		value, r, err := field(r, "value")
		if err != nil {
			return t, fmt.Errorf("record %d of %d: %w", i, count, err)
		}
		nh, w := varint(r)
		if w <= 0 {
			return t, fmt.Errorf("record %d of %d: header count: %w", i, count, varintErr(w))
		}
		r = r[w:]
		// A header is two lengths at least.
		if nh < 0 || nh > int64(len(r)/2) {
			return t, fmt.Errorf("record %d of %d: %d headers in %d bytes", i, count, nh, len(r))
		}
		var hs []Header
		if f != nil && nh > 0 {
			if nh > int64(len(f.headers)) {
				return t, fmt.Errorf("record %d of %d: more headers than the batch counted", i, count)
			}
			hs, f.headers = f.headers[:nh:nh], f.headers[nh:]
		}
		for j := range int(nh) {
			var hk, hv []byte
			if hk, r, err = field(r, "header key"); err == nil && hk == nil {
				err = errors.New("header key is null")
			}
			if err == nil {
				hv, r, err = field(r, "header value")
			}
			if err != nil {
				return t, fmt.Errorf("record %d of %d: header %d: %w", i, count, j, err)
			}
			t.headers++
			t.keyBytes += len(hk)
			if f != nil {
				hs[j] = Header{Key: f.key(hk), Value: hv}
			}
		}
		if len(r) != 0 {
			return t, fmt.Errorf("record %d of %d: %d bytes after its fields, within its length", i, count, len(r))
		}
		if f != nil {
			ts := f.firstTS + tsDelta
			if f.logAppend {
				ts = f.maxTS
			}
			f.out = append(f.out, Record{Offset: f.base + offDelta, Timestamp: ts, Key: key, Value: value, Headers: hs})
		}
	}
	if len(sec) != 0 {
		return t, fmt.Errorf("%d bytes after the last of %d records", len(sec), count)
	}
	return t, nil
}

// field reads a length-prefixed byte string; length -1 is null (nil). The
// result's capacity ends with it, so appending to it cannot overwrite what
// follows.
func field(r []byte, what string) (b, rest []byte, err error) {
	l, w := varint(r)
	if w <= 0 {
		return nil, r, fmt.Errorf("%s length: %w", what, varintErr(w))
	}
	r = r[w:]
	switch {
	case l == -1:
		return nil, r, nil
	case l < -1:
		return nil, r, fmt.Errorf("%s length %d", what, l)
	case l > int64(len(r)):
		return nil, r, fmt.Errorf("%s of %d bytes, with %d left", what, l, len(r))
	}
	return r[:l:l], r[l:], nil
}

// varint reads a zigzag varint as binary.Varint does, the one-byte case
// (most lengths and deltas) inline.
func varint(b []byte) (int64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		u := uint64(b[0])
		return int64(u>>1) ^ -int64(u&1), 1
	}
	return binary.Varint(b)
}

func varintErr(n int) error {
	if n == 0 {
		return errors.New("truncated varint")
	}
	return errors.New("varint overflows 64 bits")
}
