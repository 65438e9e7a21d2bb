package records_test

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/meshka/meshka/records"
)

func addSplitSeeds(f *testing.F) {
	plain := encodeBatch(f, 0, 0, -1, valueRecords(3)...)
	txn := encodeBatch(f, 3, attrTransactional, 42, valueRecords(2)...)
	abort := encodeMarker(f, 5, 42, false)
	commit := encodeMarker(f, 6, 43, true)
	legacy := encodeLegacy(f, 7, "legacy")
	f.Add(concat(plain, txn, abort, commit, legacy))
	f.Add(concat(plain, txn[:30]))
	f.Add(abort)
	f.Add(commit)
	f.Add(legacy)
	neg := bytes.Clone(plain)
	binary.BigEndian.PutUint32(neg[8:12], 0x80000000)
	f.Add(neg)
	f.Add([]byte{})
}

// FuzzSplit checks that Split never panics and that what it returns tiles
// the input: the batches are consecutive, non-overlapping, capacity-capped
// views of the input from its start, and rest is exactly what follows them.
func FuzzSplit(f *testing.F) {
	addSplitSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		batches, rest, err := records.Split(data, nil)
		off := 0
		for i := range batches {
			b := &batches[i]
			n := len(b.Data)
			if n < 12 || off+n > len(data) {
				t.Fatalf("batch %d: %d bytes at %d overruns the %d-byte input", i, n, off, len(data))
			}
			if &b.Data[0] != &data[off] {
				t.Fatalf("batch %d does not start where batch %d ended (byte %d)", i, i-1, off)
			}
			if cap(b.Data) != n {
				t.Fatalf("batch %d: cap %d exceeds len %d", i, cap(b.Data), n)
			}
			if b.Last < b.Base {
				t.Fatalf("batch %d: last %d before base %d", i, b.Last, b.Base)
			}
			if b.Magic >= 2 && n < 61 {
				t.Fatalf("batch %d: magic %d with only %d bytes", i, b.Magic, n)
			}
			_, _ = b.ControlType()
			off += n
		}
		if len(rest) != len(data)-off || (len(rest) > 0 && &rest[0] != &data[off]) {
			t.Fatalf("rest is %d bytes, want the %d bytes after the batches", len(rest), len(data)-off)
		}
		if err == nil {
			// A clean split leaves only an incomplete batch behind.
			if again, _, _ := records.Split(rest, nil); len(again) != 0 {
				t.Fatalf("rest still holds %d complete batches", len(again))
			}
		}
		// Splitting the consumed prefix again gives the same batches.
		again, tail, err2 := records.Split(data[:off], nil)
		if err2 != nil || len(tail) != 0 || len(again) != len(batches) {
			t.Fatalf("re-split of the consumed prefix: %d batches, %d left, %v; want %d", len(again), len(tail), err2, len(batches))
		}
	})
}

// FuzzControlType feeds arbitrary bytes after a valid control batch header
// so ControlType's record walk sees every shape of truncated or lying
// varint.
func FuzzControlType(f *testing.F) {
	f.Add(encodeMarker(f, 0, 1, false)[61:])
	f.Add(encodeMarker(f, 0, 1, true)[61:])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	header := encodeMarker(f, 0, 1, false)[:61]
	f.Fuzz(func(t *testing.T, tail []byte) {
		buf := append(bytes.Clone(header), tail...)
		binary.BigEndian.PutUint32(buf[8:12], uint32(len(buf)-12))
		bs, rest, err := records.Split(buf, nil)
		if err != nil || len(bs) != 1 || len(rest) != 0 {
			t.Fatalf("Split of a well-formed header: %d batches, %d rest, %v", len(bs), len(rest), err)
		}
		if !bs[0].Control() {
			t.Fatal("marker header lost its control bit")
		}
		typ, ok := bs[0].ControlType()
		if ok && len(tail) < 5 {
			t.Fatalf("type %d read from a %d-byte record", typ, len(tail))
		}
	})
}

// FuzzDecodeBatch checks that DecodeBatch and DecodeProduced never panic, and that what it
// decodes encodes again and decodes to the same records. With seal set,
// the input's length field and CRC are made to agree with it first, so
// the fuzzer's changes reach the decompressors and the record parser
// instead of stopping at the CRC.
func FuzzDecodeBatch(f *testing.F) {
	for _, c := range allCodecs {
		f.Add(encode(f, sampleRecords(20)[1:], c), false)
		f.Add(encode(f, []records.Record{{Key: []byte("k"), Headers: []records.Header{{Key: "h"}}}}, c), true)
	}
	f.Add(encodeBatch(f, 100, 0, -1, valueRecords(3)...), true)
	f.Add(encodeMarker(f, 5, 42, true), false)
	f.Add(encodeLegacy(f, 7, "legacy"), false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, data []byte, seal bool) {
		if seal && len(data) >= 61 {
			data = reseal(bytes.Clone(data))
		}
		// DecodeProduced (into a scratch buffer) reads whatever
		// DecodeBatch does, the same way, and more (a wrong CRC), never
		// panicking.
		var scratch []byte
		produced, perr := records.DecodeProduced(data, nil, &scratch)
		got, err := records.DecodeBatch(data, nil)
		if err == nil && (perr != nil || !reflect.DeepEqual(produced, got)) {
			t.Fatalf("DecodeProduced: %v %v, DecodeBatch: %v", produced, perr, got)
		}
		if perr != nil && len(produced) != 0 {
			t.Fatalf("DecodeProduced: %d records returned with %v", len(produced), perr)
		}
		if err != nil {
			if len(got) != 0 {
				t.Fatalf("%d records returned with %v", len(got), err)
			}
			return
		}
		if len(got) == 0 {
			return
		}
		again, err := records.EncodeBatch(got, records.CodecNone)
		if err != nil {
			t.Fatalf("decoded records do not encode: %v", err)
		}
		back, err := records.DecodeBatch(again, nil)
		if err != nil {
			t.Fatalf("re-encoded records do not decode: %v", err)
		}
		for i := range got {
			got[i].Offset = int64(i)
		}
		if !reflect.DeepEqual(back, got) {
			t.Fatalf("re-encoded records decode differently:\n got %v\nwant %v", back, got)
		}
	})
}
