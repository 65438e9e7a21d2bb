package records_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testbatch"
	"github.com/meshka/meshka/records"
)

const (
	attrTransactional = 0x10
	attrControl       = 0x20
)

// encodeBatch builds a magic 2 record batch with franz-go's encoders, so the
// bytes are what a real client or broker puts on the wire, CRC included.
func encodeBatch(tb testing.TB, base int64, attrs int16, pid int64, recs ...kmsg.Record) []byte {
	tb.Helper()
	if len(recs) == 0 {
		tb.Fatal("a batch needs at least one record")
	}
	recs = slices.Clone(recs)
	for i := range recs {
		recs[i].TimestampDelta64 = int64(i)
	}
	return testbatch.Encode(kmsg.RecordBatch{
		FirstOffset:          base,
		PartitionLeaderEpoch: 7,
		Attributes:           attrs,
		FirstTimestamp:       1_700_000_000_000,
		MaxTimestamp:         1_700_000_000_000 + int64(len(recs)-1),
		ProducerID:           pid,
	}, recs...)
}

func valueRecords(n int) []kmsg.Record {
	recs := make([]kmsg.Record, n)
	for i := range recs {
		recs[i] = kmsg.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("value-%d", i))}
	}
	return recs
}

// encodeMarker builds a transaction marker: a control batch holding one
// record whose key is ControlRecordKey{version 0, type} and whose value is
// an EndTxnMarker.
func encodeMarker(tb testing.TB, offset, pid int64, commit bool) []byte {
	tb.Helper()
	key := kmsg.ControlRecordKey{Version: 0, Type: kmsg.ControlRecordKeyTypeAbort}
	if commit {
		key.Type = kmsg.ControlRecordKeyTypeCommit
	}
	val := kmsg.EndTxnMarker{Version: 0, CoordinatorEpoch: 3}
	rec := kmsg.Record{Key: key.AppendTo(nil), Value: val.AppendTo(nil)}
	return encodeBatch(tb, offset, attrControl|attrTransactional, pid, rec)
}

// encodeLegacy builds a magic 1 message-set entry with kmsg's MessageV1.
func encodeLegacy(tb testing.TB, offset int64, value string) []byte {
	tb.Helper()
	m := kmsg.MessageV1{Offset: offset, Magic: 1, Timestamp: 1_600_000_000_000, Key: nil, Value: []byte(value)}
	m.MessageSize = int32(len(m.AppendTo(nil)) - 12)
	out := m.AppendTo(nil)
	m.CRC = int32(crc32.ChecksumIEEE(out[16:]))
	return m.AppendTo(out[:0])
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestSplitRealBatches(t *testing.T) {
	plain := encodeBatch(t, 100, 0, -1, valueRecords(3)...)
	txn := encodeBatch(t, 103, attrTransactional, 42, valueRecords(2)...)
	commit := encodeMarker(t, 105, 42, true)
	buf := concat(plain, txn, commit)

	got, rest, err := records.Split(buf, nil)
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	if len(rest) != 0 {
		t.Fatalf("rest has %d bytes, want 0", len(rest))
	}
	want := []struct {
		data              []byte
		base, last, pid   int64
		transactional, cl bool
	}{
		{plain, 100, 102, -1, false, false},
		{txn, 103, 104, 42, true, false},
		{commit, 105, 105, 42, true, true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d batches, want %d", len(got), len(want))
	}
	for i, w := range want {
		b := got[i]
		if !bytes.Equal(b.Data, w.data) {
			t.Errorf("batch %d: Data is not the batch's bytes", i)
		}
		if b.Base != w.base || b.Last != w.last || b.Next() != w.last+1 {
			t.Errorf("batch %d: offsets %d..%d next %d, want %d..%d", i, b.Base, b.Last, b.Next(), w.base, w.last)
		}
		if b.ProducerID != w.pid {
			t.Errorf("batch %d: producer id %d, want %d", i, b.ProducerID, w.pid)
		}
		if b.Transactional() != w.transactional || b.Control() != w.cl {
			t.Errorf("batch %d: transactional=%v control=%v, want %v %v", i, b.Transactional(), b.Control(), w.transactional, w.cl)
		}
		if b.Magic != 2 || b.Epoch != 7 {
			t.Errorf("batch %d: magic %d epoch %d, want 2 and 7", i, b.Magic, b.Epoch)
		}
		if b.MaxTS != 1_700_000_000_000+(w.last-w.base) {
			t.Errorf("batch %d: max timestamp %d", i, b.MaxTS)
		}
		// The cache appends after Data; a capacity past the batch would let
		// that overwrite the next batch.
		if cap(b.Data) != len(b.Data) {
			t.Errorf("batch %d: cap %d exceeds len %d", i, cap(b.Data), len(b.Data))
		}
	}
}

func TestSplitReusesDst(t *testing.T) {
	buf := concat(encodeBatch(t, 0, 0, -1, valueRecords(1)...), encodeBatch(t, 1, 0, -1, valueRecords(1)...))
	dst := make([]records.Batch, 0, 8)
	got, _, err := records.Split(buf, dst)
	if err != nil || len(got) != 2 {
		t.Fatalf("Split: %d batches, %v", len(got), err)
	}
	if &got[0] != &dst[:1][0] {
		t.Fatal("Split did not reuse dst's backing array")
	}
}

func TestSplitTrailingPartial(t *testing.T) {
	a := encodeBatch(t, 0, 0, -1, valueRecords(2)...)
	b := encodeBatch(t, 2, 0, -1, valueRecords(2)...)
	c := encodeBatch(t, 4, 0, -1, valueRecords(5)...)
	// Cut points: inside the offset, inside the length, just past the
	// length (header incomplete), just past the magic, one byte short.
	for _, cut := range []int{1, 8, 11, 12, 16, 17, 60, 61, len(c) - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			buf := concat(a, b, c[:cut])
			got, rest, err := records.Split(buf, nil)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if len(got) != 2 || got[0].Base != 0 || got[1].Base != 2 {
				t.Fatalf("got %d batches, want the 2 complete ones", len(got))
			}
			if !bytes.Equal(rest, c[:cut]) {
				t.Fatalf("rest is %d bytes, want the %d-byte partial batch", len(rest), cut)
			}
		})
	}
}

func TestSplitCorrupt(t *testing.T) {
	good := encodeBatch(t, 0, 0, -1, valueRecords(1)...)

	negative := encodeBatch(t, 1, 0, -1, valueRecords(1)...)
	binary.BigEndian.PutUint32(negative[8:12], 0xFFFFFFF0)

	// A v2 batch whose length leaves no room for its own fixed header.
	short := make([]byte, 12+20)
	binary.BigEndian.PutUint64(short[0:8], 1)
	binary.BigEndian.PutUint32(short[8:12], 20)
	short[16] = 2

	// A last offset delta that is negative puts Last before Base.
	backwards := encodeBatch(t, 1, 0, -1, valueRecords(1)...)
	binary.BigEndian.PutUint32(backwards[23:27], 0xFFFFFFFF)

	// A delta that overflows the base offset.
	overflow := encodeBatch(t, 1<<63-1, 0, -1, valueRecords(2)...)

	for name, bad := range map[string][]byte{"negative length": negative, "short v2": short, "negative delta": backwards, "offset overflow": overflow} {
		t.Run(name, func(t *testing.T) {
			buf := concat(good, bad)
			got, rest, err := records.Split(buf, nil)
			if !errors.Is(err, records.ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			if len(got) != 1 || !bytes.Equal(got[0].Data, good) {
				t.Fatalf("got %d batches, want the good one before the corruption", len(got))
			}
			if !bytes.Equal(rest, bad) {
				t.Fatalf("rest should start at the corrupt batch")
			}
		})
	}
}

func TestSplitLegacy(t *testing.T) {
	legacy := encodeLegacy(t, 41, "old")
	v2 := encodeBatch(t, 42, 0, -1, valueRecords(1)...)
	got, rest, err := records.Split(concat(legacy, v2), nil)
	if err != nil || len(rest) != 0 || len(got) != 2 {
		t.Fatalf("Split: %d batches, %d rest, %v", len(got), len(rest), err)
	}
	l := got[0]
	if !bytes.Equal(l.Data, legacy) || l.Magic != 1 || l.Base != 41 || l.Last != 41 || l.ProducerID != -1 || l.Epoch != -1 {
		t.Fatalf("legacy entry parsed as %+v", l)
	}
	if l.Transactional() || l.Control() {
		t.Fatal("a legacy entry cannot be transactional or control")
	}
	if _, ok := l.ControlType(); ok {
		t.Fatal("ControlType accepted a legacy entry")
	}
	if got[1].Base != 42 || got[1].Magic != 2 {
		t.Fatalf("v2 batch after the legacy entry parsed as %+v", got[1])
	}
}

// An entry whose length is too small to hold even a CRC and a magic byte
// contradicts itself. Split must not take its magic from the bytes of the
// next entry and pass it on as a batch.
func TestSplitEntryTooShortForMagic(t *testing.T) {
	tiny := make([]byte, 12+2)
	binary.BigEndian.PutUint64(tiny[0:8], 9)
	binary.BigEndian.PutUint32(tiny[8:12], 2)
	next := encodeLegacy(t, 10, "x")
	got, _, err := records.Split(concat(tiny, next), nil)
	if err == nil {
		t.Fatalf("Split accepted a %d-byte entry as a batch (magic %d read from outside it): %d batches", len(tiny), got[0].Magic, len(got))
	}
	if !errors.Is(err, records.ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

func TestControlType(t *testing.T) {
	cases := []struct {
		name    string
		data    []byte
		typ     int16
		ok      bool
		control bool
	}{
		{"abort", encodeMarker(t, 5, 9, false), 0, true, true},
		{"commit", encodeMarker(t, 5, 9, true), 1, true, true},
		{"data", encodeBatch(t, 5, 0, -1, valueRecords(1)...), 0, false, false},
		{"transactional data", encodeBatch(t, 5, attrTransactional, 9, valueRecords(1)...), 0, false, false},
		// A control batch whose key is too short to hold a type.
		{"short key", encodeBatch(t, 5, attrControl|attrTransactional, 9, kmsg.Record{Key: []byte{0, 0}}), 0, false, true},
		{"null key", encodeBatch(t, 5, attrControl|attrTransactional, 9, kmsg.Record{}), 0, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bs, _, err := records.Split(c.data, nil)
			if err != nil || len(bs) != 1 {
				t.Fatalf("Split: %d batches, %v", len(bs), err)
			}
			b := bs[0]
			if b.Control() != c.control {
				t.Fatalf("Control() = %v, want %v", b.Control(), c.control)
			}
			typ, ok := b.ControlType()
			if ok != c.ok || (ok && typ != c.typ) {
				t.Fatalf("ControlType() = %d, %v; want %d, %v", typ, ok, c.typ, c.ok)
			}
		})
	}
}

// A marker cut anywhere inside its record must be reported unreadable, not
// read past its end.
func TestControlTypeTruncated(t *testing.T) {
	full := encodeMarker(t, 5, 9, false)
	for cut := 61; cut < len(full); cut++ {
		bs, _, err := records.Split(full, nil)
		if err != nil {
			t.Fatal(err)
		}
		b := bs[0]
		b.Data = b.Data[:cut:cut]
		// Once the cut is past the key the type is readable; before it,
		// the marker must be reported unreadable.
		typ, ok := b.ControlType()
		if ok && typ != 0 {
			t.Fatalf("cut at %d: ControlType = %d, want abort or unreadable", cut, typ)
		}
	}
	bs, _, _ := records.Split(full, nil)
	b := bs[0]
	b.Data = b.Data[:40]
	if _, ok := b.ControlType(); ok {
		t.Fatal("ControlType read a marker shorter than the batch header")
	}
}
