// Package table materialises the latest value of each key of a topic
// (compacted, typically): a state machine that does no I/O (Table), and
// the actor, one per topic, that feeds it from the topic's partitions and
// answers Get, Scan and Wait from any node.
package table

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/google/btree"

	"github.com/meshka/meshka/records"
)

// Entry is a key's latest record: where it is in the topic and what it
// holds. Its slices are the table's own copy and must not be modified.
type Entry struct {
	Key       []byte
	Value     []byte // never nil: a null value deletes the key
	Headers   []records.Header
	Partition int32
	Offset    int64
	Timestamp int64 // milliseconds since the Unix epoch
}

// entryOverhead is what an entry costs besides its bytes (its struct, its
// place in the tree), counted against the memory bound so that a table of
// many small keys cannot outgrow it unseen.
const entryOverhead = 96

// size is what the entry counts against the memory bound.
func (e *Entry) size() int64 {
	n := int64(entryOverhead + len(e.Key) + len(e.Value))
	for _, h := range e.Headers {
		n += int64(len(h.Key) + len(h.Value))
	}
	return n
}

// ErrMemory is the error of every call on a table whose entries outgrew
// its memory bound.
var ErrMemory = errors.New("table: over its memory bound (tables.max_bytes)")

// Table is the latest entry per key of one topic, in key order, with each
// partition's applied position. Not safe for concurrent use: the actor
// owns it.
type Table struct {
	tree     *btree.BTreeG[*Entry]
	bytes    int64
	maxBytes int64
	// positions[p] is the offset after the last batch applied from
	// partition p: the next offset to read, past control batches and the
	// gaps compaction leaves.
	positions []int64
	// ends are the partitions' end offsets when loading began; the table
	// is loaded once every position has reached its end.
	ends   []int64
	loaded bool
	err    error
}

// New is an empty table of a topic whose partitions start at starts (the
// log start offsets, where reading begins) and end at ends (the end
// offsets when loading began). maxBytes bounds the entries' memory (see
// Bytes); 0 means no bound.
func New(starts, ends []int64, maxBytes int64) (*Table, error) {
	if len(starts) != len(ends) {
		return nil, fmt.Errorf("table: %d start offsets for %d partitions", len(starts), len(ends))
	}
	t := &Table{
		tree:      btree.NewG(32, func(a, b *Entry) bool { return bytes.Compare(a.Key, b.Key) < 0 }),
		maxBytes:  maxBytes,
		positions: append([]int64(nil), starts...),
		ends:      append([]int64(nil), ends...),
	}
	t.checkLoaded()
	return t, nil
}

// Partitions is the number of partitions the table reads.
func (t *Table) Partitions() int32 { return int32(len(t.positions)) }

// Apply applies one read of partition: its records in offset order, and
// next, the offset after the read (the reader's position, which counts
// control batches and compaction gaps, so it may be past the last
// record's offset + 1). A record with a nil value (a tombstone) deletes
// its key; a record without a key is not a table entry and is skipped.
// Records below the partition's position were applied already and are
// skipped. Once the entries outgrow the memory bound the table drops them
// all and answers every call with ErrMemory.
func (t *Table) Apply(partition int32, recs []records.Record, next int64) error {
	if partition < 0 || int(partition) >= len(t.positions) {
		return fmt.Errorf("table: no partition %d (the topic has %d)", partition, len(t.positions))
	}
	if t.err != nil {
		return t.err
	}
	pos := t.positions[partition]
	for i := range recs {
		r := &recs[i]
		if r.Offset < pos || r.Key == nil {
			continue
		}
		if r.Value == nil {
			if old, ok := t.tree.Delete(&Entry{Key: r.Key}); ok {
				t.bytes -= old.size()
			}
			continue
		}
		e := copyEntry(partition, r)
		if old, ok := t.tree.ReplaceOrInsert(e); ok {
			t.bytes -= old.size()
		}
		t.bytes += e.size()
		if t.maxBytes > 0 && t.bytes > t.maxBytes {
			t.fail(fmt.Errorf("%w: %d bytes of entries, more than %d", ErrMemory, t.bytes, t.maxBytes))
			return t.err
		}
	}
	if next > pos {
		t.positions[partition] = next
	}
	t.checkLoaded()
	return nil
}

// Fail puts the table in an error state: its entries are dropped and
// every call answers err.
func (t *Table) Fail(err error) { t.fail(err) }

func (t *Table) fail(err error) {
	t.err = err
	t.tree.Clear(false)
	t.bytes = 0
}

// Err is why the table failed, or nil.
func (t *Table) Err() error { return t.err }

// copyEntry copies what r holds into one allocation of the table's own:
// a record aliases its batch, which must not stay pinned by a few keys.
func copyEntry(partition int32, r *records.Record) *Entry {
	n := len(r.Key) + len(r.Value)
	keys := 0
	for _, h := range r.Headers {
		n += len(h.Value)
		keys += len(h.Key)
	}
	buf := make([]byte, 0, n)
	take := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		start := len(buf)
		buf = append(buf, b...)
		return buf[start:len(buf):len(buf)]
	}
	e := &Entry{Key: take(r.Key), Value: take(r.Value), Partition: partition, Offset: r.Offset, Timestamp: r.Timestamp}
	if len(r.Headers) > 0 {
		var sb strings.Builder
		sb.Grow(keys)
		for _, h := range r.Headers {
			sb.WriteString(h.Key)
		}
		all := sb.String()
		e.Headers = make([]records.Header, len(r.Headers))
		at := 0
		for i, h := range r.Headers {
			e.Headers[i] = records.Header{Key: all[at : at+len(h.Key)], Value: take(h.Value)}
			at += len(h.Key)
		}
	}
	return e
}

func (t *Table) checkLoaded() {
	if t.loaded {
		return
	}
	for p, end := range t.ends {
		if t.positions[p] < end {
			return
		}
	}
	t.loaded = true
}

// Loaded says whether every partition has been applied up to its end
// offset as measured when loading began.
func (t *Table) Loaded() bool { return t.loaded }

// Position is the partition's applied position (-1 for a partition the
// topic does not have).
func (t *Table) Position(partition int32) int64 {
	if partition < 0 || int(partition) >= len(t.positions) {
		return -1
	}
	return t.positions[partition]
}

// Positions are the applied positions, by partition: a snapshot read now
// holds exactly the records below them.
func (t *Table) Positions() map[int32]int64 {
	out := make(map[int32]int64, len(t.positions))
	for p, off := range t.positions {
		out[int32(p)] = off
	}
	return out
}

// Reached says whether the partition has been applied up to offset (every
// record below offset is reflected).
func (t *Table) Reached(partition int32, offset int64) bool {
	return t.Position(partition) >= offset
}

// Bytes is what the entries count against the memory bound: their keys,
// values, header keys and values, and entryOverhead each.
func (t *Table) Bytes() int64 { return t.bytes }

// Len is the number of keys.
func (t *Table) Len() int { return t.tree.Len() }

// Get is key's entry.
func (t *Table) Get(key []byte) (Entry, bool, error) {
	if t.err != nil {
		return Entry{}, false, t.err
	}
	e, ok := t.tree.Get(&Entry{Key: key})
	if !ok {
		return Entry{}, false, nil
	}
	return *e, true, nil
}

// Scan returns, in key order, the entries whose keys start with prefix
// and come after after (all of them with a nil after), at most limit of
// them and, past the first, at most maxBytes of keys, values and headers;
// more says whether further entries match. A next page starts after the
// last key returned.
func (t *Table) Scan(prefix, after []byte, limit int, maxBytes int) (entries []Entry, more bool, err error) {
	if t.err != nil {
		return nil, false, t.err
	}
	if limit <= 0 {
		return nil, false, fmt.Errorf("table: scan limit %d: must be positive", limit)
	}
	pivot := &Entry{Key: prefix}
	if after != nil && bytes.Compare(after, prefix) >= 0 {
		// The first key greater than after.
		pivot = &Entry{Key: append(bytes.Clone(after), 0)}
	}
	size := 0
	t.tree.AscendGreaterOrEqual(pivot, func(e *Entry) bool {
		if !bytes.HasPrefix(e.Key, prefix) {
			return false
		}
		n := int(e.size() - entryOverhead)
		if len(entries) == limit || (len(entries) > 0 && size+n > maxBytes) {
			more = true
			return false
		}
		entries = append(entries, *e)
		size += n
		return true
	})
	return entries, more, nil
}
