package records_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/klauspost/compress/snappy"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/race"
	"github.com/meshka/meshka/internal/testbatch"
	"github.com/meshka/meshka/records"
)

var allCodecs = []records.Codec{records.CodecNone, records.CodecGzip, records.CodecSnappy, records.CodecLZ4, records.CodecZstd}

func TestParseCodec(t *testing.T) {
	for _, c := range allCodecs {
		got, err := records.ParseCodec(c.String())
		if err != nil || got != c {
			t.Errorf("ParseCodec(%q) = %v, %v; want %d", c.String(), got, err, int8(c))
		}
	}
	want := map[string]records.Codec{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
	for name, c := range want {
		if got, err := records.ParseCodec(name); err != nil || got != c {
			t.Errorf("ParseCodec(%q) = %d, %v; want %d", name, got, err, c)
		}
	}
	for _, bad := range []string{"", "GZIP", "lz4 ", "zstandard", "codec(5)"} {
		if _, err := records.ParseCodec(bad); err == nil || !strings.Contains(err.Error(), "want none, gzip, snappy, lz4 or zstd") {
			t.Errorf("ParseCodec(%q): %v, want an error naming the codecs", bad, err)
		}
	}
	if s := records.Codec(5).String(); s != "codec(5)" {
		t.Errorf("Codec(5).String() = %q", s)
	}
}

// sampleRecords are records of every shape: null and empty keys, values
// and header values, a large value, timestamps before the first, many
// records.
func sampleRecords(many int) []records.Record {
	large := bytes.Repeat([]byte("a large value for meshka, "), 12_000) // 312 KB
	recs := []records.Record{
		{Timestamp: 1_700_000_000_000, Key: []byte("k"), Value: []byte("v")},
		{Timestamp: 1_700_000_000_005},
		{Timestamp: 1_699_999_999_000, Key: []byte{}, Value: []byte{}},
		{Timestamp: 1_700_000_000_001, Key: large[:70_000], Value: large, Headers: []records.Header{
			{Key: "trace", Value: []byte("abc")}, {Key: "null", Value: nil}, {Key: "", Value: []byte{}},
		}},
		{Timestamp: -1, Key: []byte("before 1970"), Headers: []records.Header{{Key: "only-null"}}},
	}
	for i := range many {
		r := records.Record{
			Timestamp: 1_700_000_000_000 + int64(i%17),
			Key:       fmt.Appendf(nil, "key-%d", i),
			Value:     fmt.Appendf(nil, "value %d %s", i, strings.Repeat("x", i%50)),
		}
		if i%3 == 0 {
			r.Headers = []records.Header{{Key: "n", Value: fmt.Appendf(nil, "%d", i)}, {Key: "null"}}
		}
		recs = append(recs, r)
	}
	return recs
}

// numbered is recs as DecodeBatch returns them from a batch at base.
func numbered(recs []records.Record, base int64) []records.Record {
	out := slices.Clone(recs)
	for i := range out {
		out[i].Offset = base + int64(i)
	}
	return out
}

// sameRecords compares with reflect.DeepEqual, which tells nil from empty.
func sameRecords(t *testing.T, got, want []records.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("record %d:\n got %s\nwant %s", i, describe(got[i]), describe(want[i]))
		}
	}
}

func describe(r records.Record) string {
	field := func(b []byte) string {
		switch {
		case b == nil:
			return "null"
		case len(b) > 20:
			return fmt.Sprintf("%q…(%d bytes)", b[:20], len(b))
		}
		return fmt.Sprintf("%q", b)
	}
	var hs []string
	for _, h := range r.Headers {
		hs = append(hs, h.Key+"="+field(h.Value))
	}
	return fmt.Sprintf("offset %d ts %d key %s value %s headers %v (nil %v)", r.Offset, r.Timestamp, field(r.Key), field(r.Value), hs, r.Headers == nil)
}

// decodeOne splits buf, which must hold exactly one batch, and decodes it.
func decodeOne(t testing.TB, buf []byte) []records.Record {
	t.Helper()
	bs, rest, err := records.Split(buf, nil)
	if err != nil || len(bs) != 1 || len(rest) != 0 {
		t.Fatalf("Split: %d batches, %d bytes left, %v; want one batch", len(bs), len(rest), err)
	}
	recs, err := records.DecodeBatch(bs[0].Data, nil)
	if err != nil {
		t.Fatalf("DecodeBatch: %v", err)
	}
	return recs
}

func encode(t testing.TB, recs []records.Record, c records.Codec) []byte {
	t.Helper()
	b, err := records.EncodeBatch(recs, c)
	if err != nil {
		t.Fatalf("EncodeBatch(%s): %v", c, err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	sets := map[string][]records.Record{
		"one":     {{Timestamp: 5, Value: []byte("v")}},
		"null":    {{}},
		"samples": sampleRecords(2000),
	}
	for _, c := range allCodecs {
		for name, recs := range sets {
			t.Run(c.String()+"/"+name, func(t *testing.T) {
				in := slices.Clone(recs)
				in[0].Offset = 12345 // ignored
				batch := encode(t, in, c)
				if got := records.Codec(binary.BigEndian.Uint16(batch[21:]) & 7); got != c {
					t.Fatalf("batch attributes name codec %s", got)
				}
				sameRecords(t, decodeOne(t, batch), numbered(recs, 0))
			})
		}
	}
}

// The header EncodeBatch writes, checked field by field with kmsg's
// decoder, and the records with testbatch's, neither of them ours.
func TestEncodeBatchHeader(t *testing.T) {
	recs := []records.Record{
		{Timestamp: 1000, Key: []byte("a"), Value: []byte("1")},
		{Timestamp: 900, Value: []byte("2"), Headers: []records.Header{{Key: "h", Value: nil}}},
		{Timestamp: 1500, Key: []byte{}, Value: nil},
	}
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			batch := encode(t, recs, c)
			var b kmsg.RecordBatch
			if err := b.ReadFrom(batch); err != nil {
				t.Fatal(err)
			}
			want := kmsg.RecordBatch{
				FirstOffset: 0, Length: int32(len(batch) - 12), PartitionLeaderEpoch: -1, Magic: 2,
				CRC:        int32(crc32.Checksum(batch[21:], crc32.MakeTable(crc32.Castagnoli))),
				Attributes: int16(c), LastOffsetDelta: 2, FirstTimestamp: 1000, MaxTimestamp: 1500,
				ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 3, Records: b.Records,
			}
			if !reflect.DeepEqual(b, want) {
				t.Fatalf("header\n got %+v\nwant %+v", b, want)
			}
			if c != records.CodecNone {
				return
			}
			krecs, err := testbatch.Decode(&b)
			if err != nil {
				t.Fatal(err)
			}
			for i, kr := range krecs {
				r := recs[i]
				if kr.OffsetDelta != int32(i) || kr.TimestampDelta64 != r.Timestamp-1000 ||
					!reflect.DeepEqual(kr.Key, r.Key) || !reflect.DeepEqual(kr.Value, r.Value) || len(kr.Headers) != len(r.Headers) {
					t.Fatalf("record %d reads back as %+v", i, kr)
				}
			}
			if krecs[1].Headers[0].Key != "h" || krecs[1].Headers[0].Value != nil {
				t.Fatalf("header reads back as %+v", krecs[1].Headers[0])
			}
		})
	}
}

func TestEncodeBatchRefuses(t *testing.T) {
	if _, err := records.EncodeBatch(nil, records.CodecNone); err == nil {
		t.Error("no records: no error")
	}
	if _, err := records.EncodeBatch([]records.Record{{}}, records.Codec(5)); err == nil {
		t.Error("codec 5: no error")
	}
	big := []records.Record{{Value: make([]byte, records.MaxDecompressed)}}
	if _, err := records.EncodeBatch(big, records.CodecZstd); err == nil {
		t.Error("records past the decompression bound compressed anyway")
	}
}

// A batch that kmsg encodes (another encoder than ours) at a base offset,
// as a broker returns it: offsets and timestamps are absolute.
func TestDecodeKmsgBatch(t *testing.T) {
	hv := []byte("hv")
	krecs := []kmsg.Record{
		{TimestampDelta64: 0, Key: []byte("k0"), Value: []byte("v0")},
		{TimestampDelta64: -7, Key: nil, Value: []byte{}, Headers: []kmsg.Header{{Key: "a", Value: hv}, {Key: "b", Value: nil}}},
		{TimestampDelta64: 40, Key: []byte{}, Value: nil},
	}
	hdr := testbatch.NoProducer()
	hdr.FirstOffset, hdr.FirstTimestamp, hdr.MaxTimestamp = 1000, 1_700_000_000_000, 1_700_000_000_040
	batch := testbatch.Encode(hdr, krecs...)
	want := []records.Record{
		{Offset: 1000, Timestamp: 1_700_000_000_000, Key: []byte("k0"), Value: []byte("v0")},
		{Offset: 1001, Timestamp: 1_699_999_999_993, Value: []byte{}, Headers: []records.Header{{Key: "a", Value: hv}, {Key: "b"}}},
		{Offset: 1002, Timestamp: 1_700_000_000_040, Key: []byte{}},
	}
	sameRecords(t, decodeOne(t, batch), want)

	// LogAppendTime: every record carries the batch's max timestamp.
	hdr.Attributes = 0x08
	sameRecords(t, decodeOne(t, testbatch.Encode(hdr, krecs...)), func() []records.Record {
		w := slices.Clone(want)
		for i := range w {
			w[i].Timestamp = 1_700_000_000_040
		}
		return w
	}())
}

func TestDecodeLogAppendTime(t *testing.T) {
	for _, c := range allCodecs {
		batch := encode(t, sampleRecords(10), c)
		binary.BigEndian.PutUint16(batch[21:], uint16(c)|0x08)
		binary.BigEndian.PutUint64(batch[35:], 1_800_000_000_000)
		for _, r := range decodeOne(t, reseal(batch)) {
			if r.Timestamp != 1_800_000_000_000 {
				t.Fatalf("%s: record %d has timestamp %d, want the append time", c, r.Offset, r.Timestamp)
			}
		}
	}
}

func TestDecodeControlBatch(t *testing.T) {
	dst := []records.Record{{Offset: 1}}
	for _, commit := range []bool{false, true} {
		got, err := records.DecodeBatch(encodeMarker(t, 9, 42, commit), dst)
		if err != nil || len(got) != 1 {
			t.Fatalf("marker (commit %v): %d records, %v; want dst untouched and no error", commit, len(got), err)
		}
	}
}

func TestDecodeLegacy(t *testing.T) {
	_, err := records.DecodeBatch(encodeLegacy(t, 3, "old"), nil)
	if !errors.Is(err, records.ErrMagic) {
		t.Fatalf("magic 1: %v, want ErrMagic", err)
	}
	batch := encode(t, sampleRecords(1), records.CodecNone)
	batch[16] = 3
	if _, err := records.DecodeBatch(batch, nil); !errors.Is(err, records.ErrMagic) {
		t.Fatalf("magic 3: %v, want ErrMagic", err)
	}
}

// within reports whether b's bytes lie inside buf's.
func within(b, buf []byte) bool {
	if len(b) == 0 {
		return true
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(buf))
}

// Records handed out stay as they were whatever is decoded into dst next,
// and only appending to dst changes it.
func TestDecodeMemory(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			first := encode(t, sampleRecords(300), c)
			second := encode(t, slices.Repeat([]records.Record{{Key: []byte("other"), Value: []byte("other"),
				Headers: []records.Header{{Key: "zzzzz", Value: []byte("zzzzz")}, {Key: "y"}}}}, 400), c)

			prefix := []records.Record{{Offset: -5, Key: []byte("kept")}}
			dst, err := records.DecodeBatch(first, prefix)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dst[0], prefix[0]) {
				t.Fatal("the record already in dst changed")
			}
			handed := slices.Clone(dst[1:]) // what a reader holds on to
			sameRecords(t, handed, numbered(sampleRecords(300), 0))
			for _, r := range handed {
				if cap(r.Key) != len(r.Key) || cap(r.Value) != len(r.Value) {
					t.Fatalf("record %d: key or value has capacity past its end", r.Offset)
				}
				if inBatch := within(r.Value, first); len(r.Value) > 0 && inBatch != (c == records.CodecNone) {
					t.Fatalf("record %d: value in the batch's memory: %v", r.Offset, inBatch)
				}
			}
			// Decode over the same elements, several times, with
			// other data: nothing handed out changes.
			for range 3 {
				if dst, err = records.DecodeBatch(first, dst[:0]); err != nil {
					t.Fatal(err)
				}
				if dst, err = records.DecodeBatch(second, dst[:0]); err != nil {
					t.Fatal(err)
				}
			}
			sameRecords(t, handed, numbered(sampleRecords(300), 0))
			// A failed decode leaves dst as it was.
			got, err := records.DecodeBatch(first[:len(first)-1], dst)
			if err == nil || len(got) != len(dst) {
				t.Fatalf("truncated batch: %d records, %v; want dst back and an error", len(got), err)
			}
		})
	}
}

// Allocations per batch: none per record.
func TestDecodeAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("sync.Pool drops pooled buffers at random under the race detector")
	}
	plain := slices.Repeat([]records.Record{{Key: []byte("key"), Value: bytes.Repeat([]byte("v"), 100)}}, 500)
	withHeaders := slices.Repeat([]records.Record{{Key: []byte("key"), Value: []byte("v"),
		Headers: []records.Header{{Key: "a", Value: []byte("1")}, {Key: "bb", Value: nil}}}}, 500)
	// Allocations: the decompressed records (compressed batches); one
	// slice for all headers and one string for all their keys.
	limits := map[records.Codec]float64{records.CodecNone: 0, records.CodecGzip: 1, records.CodecSnappy: 1, records.CodecLZ4: 1, records.CodecZstd: 1}
	for _, c := range allCodecs {
		for name, recs := range map[string][]records.Record{"plain": plain, "headers": withHeaders} {
			batch := encode(t, recs, c)
			dst, err := records.DecodeBatch(batch, nil)
			if err != nil {
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(20, func() {
				if dst, err = records.DecodeBatch(batch, dst[:0]); err != nil || len(dst) != 500 {
					t.Fatalf("%d records, %v", len(dst), err)
				}
			})
			want := limits[c]
			if name == "headers" {
				want += 2
			}
			if allocs > want {
				t.Errorf("%s %s: %.1f allocations per batch of 500 records, want %v", c, name, allocs, want)
			}
		}
	}
}

// reseal sets a batch's length field and CRC for what it now holds, so a
// test's change reaches the record parser.
func reseal(b []byte) []byte {
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// withSection is a valid batch header with codec and count around
// records, sealed.
func withSection(section []byte, count int32, c records.Codec) []byte {
	b, err := records.EncodeBatch([]records.Record{{Value: []byte("x")}}, records.CodecNone)
	if err != nil {
		panic(err)
	}
	b = append(b[:61], section...)
	binary.BigEndian.PutUint16(b[21:], uint16(c))
	binary.BigEndian.PutUint32(b[57:], uint32(count))
	return reseal(b)
}

func wantMalformed(t *testing.T, batch []byte, what string) error {
	t.Helper()
	dst := []records.Record{{Offset: 7}}
	got, err := records.DecodeBatch(batch, dst)
	if !errors.Is(err, records.ErrMalformed) {
		t.Fatalf("%s: %v, want ErrMalformed", what, err)
	}
	if len(got) != 1 || got[0].Offset != 7 {
		t.Fatalf("%s: dst came back with %d records", what, len(got))
	}
	return err
}

func TestDecodeTruncated(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			batch := encode(t, sampleRecords(40)[4:], c) // no large value: every length is tried
			for n := range len(batch) {
				cut := slices.Clone(batch[:n])
				if _, err := records.DecodeBatch(cut, nil); err == nil {
					t.Fatalf("%d of %d bytes decoded", n, len(batch))
				}
				if n >= 61 {
					// Length and CRC agree with the cut: the
					// records section itself is short.
					wantMalformed(t, reseal(cut), fmt.Sprintf("%d of %d bytes, resealed", n, len(batch)))
				}
			}
		})
	}
}

func TestDecodeCorrupt(t *testing.T) {
	batch := encode(t, sampleRecords(5)[4:], records.CodecNone) // small: each byte is flipped
	for i := 17; i < len(batch); i++ {
		b := slices.Clone(batch)
		b[i] ^= 0x40
		if err := wantMalformed(t, b, fmt.Sprintf("byte %d flipped", i)); !strings.Contains(err.Error(), "CRC") {
			t.Fatalf("byte %d flipped: %v, want a CRC mismatch", i, err)
		}
	}
	b := slices.Clone(batch)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)))
	wantMalformed(t, b, "length field past the batch")
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-13))
	wantMalformed(t, b, "length field short of the batch")
	b = withSection(nil, 0, 5)
	wantMalformed(t, b, "codec 5")
}

// A record body builder: zigzag varints and raw bytes.
type rb []byte

func (b rb) v(x ...int64) rb {
	for _, x := range x {
		b = binary.AppendVarint(b, x)
	}
	return b
}
func (b rb) raw(p ...byte) rb { return append(b, p...) }

// rec is a record of length len(body)+extra.
func rec(body rb, extra int64) rb { return rb{}.v(int64(len(body)) + extra).raw(body...) }

func TestDecodeHostileRecords(t *testing.T) {
	// attributes 0, timestamp delta 0, offset delta 0, null key, value
	// "v", no headers.
	good := rb{0}.v(0, 0, -1, 1).raw('v').v(0)
	// Padding, so that a short record is not refused only for the
	// record count its section could hold.
	long := rb{0}.v(0, 0, -1, 20).raw(bytes.Repeat([]byte("v"), 20)...).v(0)
	overflow := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	cases := []struct {
		name    string
		section rb
		count   int32
	}{
		{"good record, count 2", rec(good, 0), 2},
		{"good record, count 0", rec(good, 0), 0},
		{"count negative", rec(good, 0), -1},
		{"count far past the data", rec(good, 0), 1 << 30},
		{"record length past the section", rec(good, 1), 1},
		{"record length negative", rb{}.v(-3).raw(good...), 1},
		{"record length zero", rb{}.v(0).raw(good...), 1},
		{"record length overflowing", rb(overflow).raw(good...), 1},
		{"record length truncated", rec(long, 0).raw(0x80), 2},
		{"fields past the record length", rec(good, -1).raw('!'), 1},
		{"bytes left within the record", rec(append(good, 0), 0), 1},
		{"timestamp delta overflowing", rec(rb{0}.raw(overflow...).v(0, -1, -1, 0), 0), 1},
		{"offset delta past int32", rec(rb{0}.v(0, 1<<31, -1, -1, 0), 0), 1},
		{"offset delta negative", rec(rb{0}.v(0, -1, -1, -1, 0), 0), 1},
		{"key past the record", rec(rb{0}.v(0, 0, 50).raw('k').v(-1, 0), 0), 1},
		{"key length -2", rec(rb{0}.v(0, 0, -2, -1, 0), 0), 1},
		{"value length truncated", rec(rb{0}.v(0, 0, -1).raw(0x80), 0).raw(long...), 1},
		{"header count past the record", rec(rb{0}.v(0, 0, -1, -1, 1000, 0, -1), 0), 1},
		{"header count negative", rec(rb{0}.v(0, 0, -1, -1, -1), 0), 1},
		{"header key null", rec(rb{0}.v(0, 0, -1, -1, 1, -1, -1), 0), 1},
		{"header value past the record", rec(rb{0}.v(0, 0, -1, -1, 1, 1).raw('h').v(9), 0), 1},
		{"header missing its value", rec(rb{0}.v(0, 0, -1, -1, 1, 1).raw('h'), 0), 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			batch := withSection(tc.section, tc.count, records.CodecNone)
			var err error
			if allocated := allocatedBy(func() { err = wantMalformed(t, batch, tc.name) }); allocated > 64<<10 {
				t.Fatalf("refusing it allocated %d bytes", allocated)
			}
			t.Log(err)
		})
	}
	// The good record itself decodes, so the cases fail for their reason.
	got, err := records.DecodeBatch(withSection(rec(good, 0), 1, records.CodecNone), nil)
	if err != nil || len(got) != 1 || string(got[0].Value) != "v" || got[0].Key != nil {
		t.Fatalf("the good record: %v, %v", got, err)
	}
}

// allocatedBy is how many bytes f allocates.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// oneValue is the records section of one record whose section is n bytes.
func oneValue(n int) []byte {
	// One record: length (4 bytes for these sizes), attributes, two
	// deltas, null key, value length (4 bytes), value, header count.
	v := make([]byte, n-4-1-1-1-1-4-1)
	for i := range v {
		v[i] = byte(i % 7)
	}
	b, err := records.EncodeBatch([]records.Record{{Value: v}}, records.CodecNone)
	if err != nil || len(b)-61 != n {
		panic(fmt.Sprintf("section of %d bytes, want %d (%v)", len(b)-61, n, err))
	}
	return b[61:]
}

// Decompression stops at the bound: a section of exactly
// MaxDecompressed bytes decodes, one byte more is ErrTooLarge, and a bomb
// of a gigabyte is refused having allocated a fraction of it.
func TestDecompressBound(t *testing.T) {
	if testing.Short() {
		t.Skip("decompresses hundreds of megabytes")
	}
	fits, over := oneValue(records.MaxDecompressed), oneValue(records.MaxDecompressed+1)
	zeros := make([]byte, 16<<20)
	for _, c := range allCodecs[1:] {
		t.Run(c.String(), func(t *testing.T) {
			payload, err := records.Compress(c, nil, fits)
			if err != nil {
				t.Fatal(err)
			}
			got, err := records.DecodeBatch(withSection(payload, 1, c), nil)
			if err != nil || len(got) != 1 || len(got[0].Value) != len(fits)-13 {
				t.Fatalf("a section of exactly the bound: %d records, %v", len(got), err)
			}
			payload, err = records.Compress(c, nil, over)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := records.DecodeBatch(withSection(payload, 1, c), nil); !errors.Is(err, records.ErrTooLarge) {
				t.Fatalf("one byte past the bound: %v, want ErrTooLarge", err)
			}

			// 64 concatenated 16 MiB frames (members, chunks): 1 GiB.
			var bomb []byte
			if c == records.CodecSnappy {
				// Snappy states each block's size; two lies past
				// the bound are refused before decoding.
				bomb = []byte("\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01")
				chunk := append(binary.AppendUvarint(nil, 40<<20), 0, 'x')
				for range 2 {
					bomb = binary.BigEndian.AppendUint32(bomb, uint32(len(chunk)))
					bomb = append(bomb, chunk...)
				}
			} else {
				frame, err := records.Compress(c, nil, zeros)
				if err != nil {
					t.Fatal(err)
				}
				bomb = bytes.Repeat(frame, 64)
			}
			batch := withSection(bomb, 1, c)
			allocated := allocatedBy(func() { _, err = records.DecodeBatch(batch, nil) })
			if allocated > 3*records.MaxDecompressed {
				t.Errorf("refusing a %d-byte bomb allocated %d MiB", len(bomb), allocated>>20)
			}
			t.Logf("a %d-byte bomb refused having allocated %d MiB", len(bomb), allocated>>20)
			if !errors.Is(err, records.ErrTooLarge) {
				t.Fatalf("bomb: %v, want ErrTooLarge", err)
			}
		})
	}
	// A raw snappy block claiming a gigabyte.
	raw := append(binary.AppendUvarint(nil, 1<<30), 0, 'x')
	if _, err := records.DecodeBatch(withSection(raw, 1, records.CodecSnappy), nil); !errors.Is(err, records.ErrTooLarge) {
		t.Fatalf("snappy block of 1 GiB: %v, want ErrTooLarge", err)
	}
}

// Snappy arrives raw from some clients and xerial-framed from the Java
// producer; EncodeBatch writes the framing, and both decode.
func TestSnappyRawBlock(t *testing.T) {
	recs := sampleRecords(100)
	framed := encode(t, recs, records.CodecSnappy)
	if !bytes.HasPrefix(framed[61:], []byte("\x82SNAPPY\x00")) {
		t.Fatal("EncodeBatch's snappy is not xerial-framed")
	}
	plain := encode(t, recs, records.CodecNone)
	raw := append(plain[:61:61], snappy.Encode(nil, plain[61:])...)
	binary.BigEndian.PutUint16(raw[21:], uint16(records.CodecSnappy))
	sameRecords(t, decodeOne(t, reseal(raw)), numbered(recs, 0))
}
