package table

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/meshka/meshka/records"
)

func rec(offset int64, key, value string) records.Record {
	r := records.Record{Offset: offset, Timestamp: 1000 + offset, Key: []byte(key)}
	if value != "\x00" { // "\x00" stands for a tombstone
		r.Value = []byte(value)
	}
	return r
}

const tombstone = "\x00"

func newTable(t *testing.T, starts, ends []int64, maxBytes int64) *Table {
	t.Helper()
	tb, err := New(starts, ends, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func apply(t *testing.T, tb *Table, p int32, next int64, recs ...records.Record) {
	t.Helper()
	if err := tb.Apply(p, recs, next); err != nil {
		t.Fatal(err)
	}
}

func value(t *testing.T, tb *Table, key string) (string, bool) {
	t.Helper()
	e, ok, err := tb.Get([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return string(e.Value), ok
}

// The latest record of a key is its entry, with where it came from; a
// tombstone deletes the key, and a later record brings it back.
func TestLatestValueAndTombstones(t *testing.T) {
	tb := newTable(t, []int64{0, 0}, []int64{5, 2}, 0)
	apply(t, tb, 0, 3, rec(0, "a", "1"), rec(1, "b", "1"), rec(2, "a", "2"))
	apply(t, tb, 1, 2, rec(0, "c", "1"), rec(1, "c", tombstone))
	if v, ok := value(t, tb, "a"); !ok || v != "2" {
		t.Fatalf("a = %q, %v; want 2", v, ok)
	}
	if _, ok := value(t, tb, "c"); ok {
		t.Fatal("c survived its tombstone")
	}
	e, _, _ := tb.Get([]byte("a"))
	if e.Partition != 0 || e.Offset != 2 || e.Timestamp != 1002 {
		t.Fatalf("a's entry: %+v", e)
	}
	if tb.Loaded() {
		t.Fatal("loaded before partition 0 reached its end")
	}
	apply(t, tb, 0, 5, rec(3, "b", tombstone), rec(4, "c", "again"))
	if _, ok := value(t, tb, "b"); ok {
		t.Fatal("b survived its tombstone")
	}
	if v, ok := value(t, tb, "c"); !ok || v != "again" {
		t.Fatalf("c = %q, %v after it came back", v, ok)
	}
	if !tb.Loaded() || tb.Len() != 2 {
		t.Fatalf("loaded %v with %d keys", tb.Loaded(), tb.Len())
	}
	// A tombstone for a key the table never had deletes nothing.
	apply(t, tb, 1, 3, rec(2, "zzz", tombstone))
	if tb.Len() != 2 {
		t.Fatalf("%d keys", tb.Len())
	}
}

// Positions are the reader's, not the last record's offset + 1: a read
// ending in a control batch or a compacted gap moves the position past
// records that are not there, and loading counts that.
func TestPositionsCountGaps(t *testing.T) {
	// As compaction leaves it: records at 3, 7 and 8 of 0..11, the last
	// batch's last records removed too.
	tb := newTable(t, []int64{0}, []int64{12}, 0)
	apply(t, tb, 0, 9, rec(3, "a", "x"), rec(7, "b", "y"), rec(8, "a", "z"))
	if tb.Position(0) != 9 || tb.Loaded() {
		t.Fatalf("position %d, loaded %v", tb.Position(0), tb.Loaded())
	}
	// A read of only a transaction marker: no records, the position moves.
	apply(t, tb, 0, 12)
	if tb.Position(0) != 12 || !tb.Loaded() {
		t.Fatalf("after a control batch: position %d, loaded %v", tb.Position(0), tb.Loaded())
	}
	if !tb.Reached(0, 12) || tb.Reached(0, 13) || tb.Reached(1, 0) {
		t.Fatal("Reached disagrees with the position")
	}
	if got := tb.Positions(); len(got) != 1 || got[0] != 12 {
		t.Fatalf("positions %v", got)
	}
	// A position never goes back, and records below it are not applied
	// again (a read asked ahead that overlaps).
	apply(t, tb, 0, 10, rec(8, "a", "old"))
	if v, _ := value(t, tb, "a"); v != "z" || tb.Position(0) != 12 {
		t.Fatalf("a = %q at position %d after an overlapping read", v, tb.Position(0))
	}
}

// A topic that starts where it ends (empty, or emptied by retention) is
// loaded at once; a log start past 0 is where positions begin.
func TestLoadedFromLogStart(t *testing.T) {
	if tb := newTable(t, []int64{4, 0}, []int64{4, 0}, 0); !tb.Loaded() || tb.Position(0) != 4 {
		t.Fatalf("loaded %v, position %d", tb.Loaded(), tb.Position(0))
	}
	if _, err := New([]int64{0}, []int64{0, 0}, 0); err == nil {
		t.Fatal("New took offsets of different partition counts")
	}
	tb := newTable(t, []int64{0}, []int64{1}, 0)
	if err := tb.Apply(3, nil, 1); err == nil {
		t.Fatal("Apply took a partition the topic does not have")
	}
}

// Records without a key are no entry; an empty key or value is one.
func TestKeysAndEmptyValues(t *testing.T) {
	tb := newTable(t, []int64{0}, []int64{3}, 0)
	apply(t, tb, 0, 3, records.Record{Offset: 0, Value: []byte("no key")},
		records.Record{Offset: 1, Key: []byte{}, Value: []byte("empty key")},
		records.Record{Offset: 2, Key: []byte("k"), Value: []byte{}})
	if tb.Len() != 2 {
		t.Fatalf("%d keys", tb.Len())
	}
	if v, ok := value(t, tb, ""); !ok || v != "empty key" {
		t.Fatalf("empty key: %q %v", v, ok)
	}
	e, ok, _ := tb.Get([]byte("k"))
	if !ok || e.Value == nil || len(e.Value) != 0 {
		t.Fatalf("empty value: %+v %v", e, ok)
	}
}

// Entries are the table's own copies: the batch they were decoded from
// may be reused.
func TestEntriesAreCopies(t *testing.T) {
	buf := []byte("keyvaluehv")
	r := records.Record{Offset: 0, Key: buf[0:3], Value: buf[3:8], Headers: []records.Header{{Key: "h", Value: buf[8:10]}, {Key: "n"}}}
	tb := newTable(t, []int64{0}, []int64{1}, 0)
	apply(t, tb, 0, 1, r)
	copy(buf, "XXXXXXXXXX")
	e, ok, _ := tb.Get([]byte("key"))
	if !ok || string(e.Value) != "value" || len(e.Headers) != 2 || e.Headers[0].Key != "h" || string(e.Headers[0].Value) != "hv" ||
		e.Headers[1].Key != "n" || e.Headers[1].Value != nil {
		t.Fatalf("entry %+v after the batch changed", e)
	}
}

func keys(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e.Key)
	}
	return out
}

// Scan returns keys in order, only those with the prefix, in pages that
// resume after the last key, bounded by count and by bytes (at least one
// entry a page, whatever its size).
func TestScan(t *testing.T) {
	tb := newTable(t, []int64{0}, []int64{9}, 0)
	apply(t, tb, 0, 9, rec(0, "b/2", "x"), rec(1, "a/1", "x"), rec(2, "b/1", "x"), rec(3, "b/3", "x"), rec(4, "c", "x"),
		rec(5, "b", "x"), rec(6, "b/10", "x"), rec(7, "ba", "x"), rec(8, "b/3", tombstone))

	all, more, err := tb.Scan(nil, nil, 100, MaxScanBytes)
	if err != nil || more || !slices.Equal(keys(all), []string{"a/1", "b", "b/1", "b/10", "b/2", "ba", "c"}) {
		t.Fatalf("scan all: %v more %v err %v", keys(all), more, err)
	}
	var pages [][]string
	var after []byte
	for {
		es, more, err := tb.Scan([]byte("b/"), after, 2, MaxScanBytes)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, keys(es))
		if !more {
			break
		}
		after = es[len(es)-1].Key
	}
	if fmt.Sprint(pages) != "[[b/1 b/10] [b/2]]" {
		t.Fatalf("pages of b/: %v", pages)
	}
	// after before the prefix starts at the prefix; after past it ends.
	if es, _, _ := tb.Scan([]byte("b/"), []byte("a"), 10, MaxScanBytes); !slices.Equal(keys(es), []string{"b/1", "b/10", "b/2"}) {
		t.Fatalf("after below the prefix: %v", keys(es))
	}
	if es, more, _ := tb.Scan([]byte("b/"), []byte("b/2"), 10, MaxScanBytes); len(es) != 0 || more {
		t.Fatalf("after the last: %v more %v", keys(es), more)
	}
	if es, _, _ := tb.Scan([]byte("zz"), nil, 10, MaxScanBytes); len(es) != 0 {
		t.Fatalf("no such prefix: %v", keys(es))
	}
	// A byte bound smaller than one entry still gives one a page.
	es, more, _ := tb.Scan(nil, nil, 100, 1)
	if len(es) != 1 || !more {
		t.Fatalf("byte-bounded page: %v more %v", keys(es), more)
	}
	es, more, _ = tb.Scan(nil, nil, 100, 10) // a/1, b and b/1: 4, 2 and 4 bytes
	if len(es) != 3 || !more {
		t.Fatalf("10-byte page: %v more %v", keys(es), more)
	}
	if _, _, err := tb.Scan(nil, nil, 0, 1); err == nil {
		t.Fatal("a scan of 0 entries")
	}
}

// Past its memory bound a table drops its entries and answers every call
// with ErrMemory, instead of growing; replacing and deleting free what
// they replace.
func TestMemoryBound(t *testing.T) {
	const bound = 10 * (entryOverhead + 3 + 100)
	tb := newTable(t, []int64{0}, []int64{100}, bound)
	big := strings.Repeat("v", 100)
	off := int64(0)
	for range 3 { // the same ten keys, three times over: within the bound
		for k := range 10 {
			apply(t, tb, 0, off+1, rec(off, fmt.Sprintf("k%02d", k), big))
			off++
		}
	}
	if tb.Bytes() != bound || tb.Len() != 10 {
		t.Fatalf("%d bytes in %d keys, want %d", tb.Bytes(), tb.Len(), bound)
	}
	apply(t, tb, 0, off+1, rec(off, "k00", tombstone))
	off++
	apply(t, tb, 0, off+1, rec(off, "k10", big))
	off++
	if tb.Bytes() != bound {
		t.Fatalf("%d bytes after a delete and an insert", tb.Bytes())
	}
	err := tb.Apply(0, []records.Record{rec(off, "k11", "v")}, off+1)
	if !errors.Is(err, ErrMemory) || !strings.Contains(err.Error(), "tables.max_bytes") {
		t.Fatalf("over the bound: %v", err)
	}
	if _, _, err := tb.Get([]byte("k01")); !errors.Is(err, ErrMemory) {
		t.Fatalf("Get over the bound: %v", err)
	}
	if _, _, err := tb.Scan(nil, nil, 1, 1); !errors.Is(err, ErrMemory) {
		t.Fatalf("Scan over the bound: %v", err)
	}
	if tb.Len() != 0 || tb.Bytes() != 0 {
		t.Fatalf("a failed table keeps %d keys, %d bytes", tb.Len(), tb.Bytes())
	}
	if err := tb.Apply(0, []records.Record{rec(off+1, "k", "v")}, off+2); !errors.Is(err, ErrMemory) {
		t.Fatalf("Apply after the failure: %v", err)
	}
}

// FuzzTable feeds the table a stream of operations decoded from the
// input and holds it to a map of the latest values: Get, a full Scan in
// pages, Len and Bytes agree with the model after every step.
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 1, 2, 1, 1, 3, 0, 2, 5})
	f.Add([]byte("a tombstone, then the key again"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		tb, _ := New([]int64{0, 0}, []int64{0, 0}, 0)
		model := map[string]string{}
		offsets := []int64{0, 0}
		for i := 0; i+2 < len(ops); i += 3 {
			p := int32(ops[i] & 1)
			key := string([]byte{'k', ops[i+1] % 8})
			var r records.Record
			if ops[i+2]%4 == 0 {
				r = records.Record{Offset: offsets[p], Key: []byte(key)} // a tombstone
				delete(model, key)
			} else {
				v := strings.Repeat("v", int(ops[i+2]%16))
				r = records.Record{Offset: offsets[p], Key: []byte(key), Value: []byte(v)}
				model[key] = v
			}
			gap := int64(ops[i] >> 5) // compaction gaps
			if err := tb.Apply(p, []records.Record{r}, offsets[p]+1+gap); err != nil {
				t.Fatal(err)
			}
			offsets[p] += 1 + gap
		}
		if tb.Len() != len(model) {
			t.Fatalf("%d keys, the model %d", tb.Len(), len(model))
		}
		var size int64
		for k, v := range model {
			got, ok, err := tb.Get([]byte(k))
			if err != nil || !ok || string(got.Value) != v {
				t.Fatalf("%q = %q %v %v, want %q", k, got.Value, ok, err, v)
			}
			size += int64(entryOverhead + len(k) + len(v))
		}
		if tb.Bytes() != size {
			t.Fatalf("%d bytes, the model %d", tb.Bytes(), size)
		}
		var scanned []Entry
		var after []byte
		for {
			es, more, err := tb.Scan(nil, after, 3, MaxScanBytes)
			if err != nil {
				t.Fatal(err)
			}
			scanned = append(scanned, es...)
			if !more {
				break
			}
			after = es[len(es)-1].Key
		}
		if len(scanned) != len(model) || !slices.IsSortedFunc(scanned, func(a, b Entry) int { return bytes.Compare(a.Key, b.Key) }) {
			t.Fatalf("scan: %v, the model %v", keys(scanned), model)
		}
	})
}
