package partition

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testbatch"
	"github.com/meshka/meshka/records"
	"github.com/meshka/meshka/upstream"
)

// logTestBatch encodes a magic 2 batch of n records with franz-go's
// encoders. attrs 0x10 marks it transactional; markers come from
// logTestMarker.
func logTestBatch(tb testing.TB, base int64, n int, attrs int16, pid int64) []byte {
	tb.Helper()
	recs := make([]kmsg.Record, n)
	for i := range recs {
		recs[i] = kmsg.Record{Value: []byte(fmt.Sprintf("v%d-%d", base, i))}
	}
	return logTestEncode(base, attrs, pid, recs)
}

// logTestMarker encodes a transaction marker: a control batch with one
// record whose key is version 0 and type 0 (abort) or 1 (commit).
func logTestMarker(tb testing.TB, offset, pid int64, commit bool) []byte {
	tb.Helper()
	key := kmsg.ControlRecordKey{Type: kmsg.ControlRecordKeyTypeAbort}
	if commit {
		key.Type = kmsg.ControlRecordKeyTypeCommit
	}
	val := kmsg.EndTxnMarker{CoordinatorEpoch: 1}
	return logTestEncode(offset, 0x30, pid, []kmsg.Record{{Key: key.AppendTo(nil), Value: val.AppendTo(nil)}})
}

func logTestEncode(base int64, attrs int16, pid int64, recs []kmsg.Record) []byte {
	return testbatch.Encode(kmsg.RecordBatch{FirstOffset: base, PartitionLeaderEpoch: 1, Attributes: attrs,
		FirstTimestamp: 1, MaxTimestamp: 1, ProducerID: pid}, recs...)
}

// logTestChunk splits the concatenated raw batches as the upstream stream
// does and wraps them in a chunk marked Shared, as one of several
// partitions in an upstream response is: Append must copy it, and
// TestLogServesFromStart scribbles over the buffer afterwards to check.
func logTestChunk(tb testing.TB, hw, lso int64, raws ...[]byte) *upstream.Chunk {
	tb.Helper()
	var buf []byte
	for _, r := range raws {
		buf = append(buf, r...)
	}
	bs, rest, err := records.Split(buf, nil)
	if err != nil || len(rest) != 0 || len(bs) != len(raws) {
		tb.Fatalf("Split: %d batches, %d rest, %v", len(bs), len(rest), err)
	}
	return &upstream.Chunk{HighWatermark: hw, LastStableOffset: lso, LogStartOffset: 0, Batches: bs, Shared: true}
}

func logTestClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// logTestExpect checks a Served read returned exactly want, in order.
func logTestExpect(t *testing.T, r ReadResult, want ...[]byte) {
	t.Helper()
	if r.Status != Served {
		t.Fatalf("status %d, want Served", r.Status)
	}
	if len(r.Batches) != len(want) {
		t.Fatalf("got %d batches, want %d", len(r.Batches), len(want))
	}
	total := 0
	for i := range want {
		if !bytes.Equal(r.Batches[i], want[i]) {
			t.Fatalf("batch %d differs from what upstream sent", i)
		}
		total += len(want[i])
	}
	if r.Bytes != total {
		t.Fatalf("Bytes = %d, want %d", r.Bytes, total)
	}
}

func TestLogServesFromStart(t *testing.T) {
	budget := NewBudget(1 << 20)
	l := NewLog(0, 1<<20, budget)
	first := l.Read(0, 1<<20, ReadUncommitted)
	if first.Status != Served || len(first.Batches) != 0 || first.Notify == nil {
		t.Fatalf("before any upstream answer: %+v, want an empty Served read with Notify", first)
	}

	a, b, c := logTestBatch(t, 0, 3, 0, -1), logTestBatch(t, 3, 2, 0, -1), logTestBatch(t, 5, 1, 0, -1)
	ch := logTestChunk(t, 6, 6, a, b, c)
	l.Append(ch)
	if !logTestClosed(first.Notify) {
		t.Fatal("a reader waiting for the first answer was not woken")
	}
	// The cache must own its copy: the upstream buffer holds other
	// partitions' records.
	for i := range ch.Batches {
		for j := range ch.Batches[i].Data {
			ch.Batches[i].Data[j] = 0xEE
		}
	}

	r := l.Read(0, 1<<20, ReadUncommitted)
	logTestExpect(t, r, a, b, c)
	if r.HighWatermark != 6 || r.LastStableOffset != 6 || r.LogStartOffset != 0 {
		t.Fatalf("watermarks %d/%d/%d, want 6/6/0", r.HighWatermark, r.LastStableOffset, r.LogStartOffset)
	}
	// An offset inside a batch returns that whole batch first.
	logTestExpect(t, l.Read(4, 1<<20, ReadUncommitted), b, c)
	logTestExpect(t, l.Read(5, 1<<20, ReadUncommitted), c)
	if l.End() != 6 || l.Size() != int64(len(a)+len(b)+len(c)) || budget.Used() != l.Size() {
		t.Fatalf("end %d size %d used %d", l.End(), l.Size(), budget.Used())
	}
}

// A chunk whose buffer is its own is cached as it came, not copied, and
// still counted byte for byte.
func TestLogKeepsOwnChunkBuffer(t *testing.T) {
	budget := NewBudget(1 << 20)
	l := NewLog(0, 1<<20, budget)
	a, b := logTestBatch(t, 0, 2, 0, -1), logTestBatch(t, 2, 3, 0, -1)
	ch := logTestChunk(t, 5, 5, a, b)
	ch.Shared = false
	l.Append(ch)
	r := l.Read(0, 1<<20, ReadUncommitted)
	logTestExpect(t, r, a, b)
	if &r.Batches[0][0] != &ch.Batches[0].Data[0] || &r.Batches[1][0] != &ch.Batches[1].Data[0] {
		t.Fatal("a chunk with its own buffer was copied")
	}
	if l.Size() != int64(len(a)+len(b)) || budget.Used() != l.Size() {
		t.Fatalf("size %d used %d, want %d", l.Size(), budget.Used(), len(a)+len(b))
	}
}

func TestLogWaitAtEnd(t *testing.T) {
	l := NewLog(0, 1<<20, NewBudget(1<<20))
	a := logTestBatch(t, 0, 2, 0, -1)
	l.Append(logTestChunk(t, 2, 2, a))
	r := l.Read(2, 1<<20, ReadUncommitted)
	if r.Status != Served || len(r.Batches) != 0 || r.Bytes != 0 {
		t.Fatalf("read at the end: %+v, want empty Served", r)
	}
	if logTestClosed(r.Notify) {
		t.Fatal("Notify closed before any new data")
	}
	// A chunk with nothing new still carries fresh watermarks; it wakes
	// the reader, which then finds nothing and waits again.
	l.Append(logTestChunk(t, 2, 2, a))
	if !logTestClosed(r.Notify) {
		t.Fatal("Notify not closed by Append")
	}
	r = l.Read(2, 1<<20, ReadUncommitted)
	if len(r.Batches) != 0 || l.Size() != int64(len(a)) {
		t.Fatalf("a repeated batch was cached twice: %d batches, size %d", len(r.Batches), l.Size())
	}
	b := logTestBatch(t, 2, 1, 0, -1)
	l.Append(logTestChunk(t, 3, 3, b))
	if !logTestClosed(r.Notify) {
		t.Fatal("Notify not closed by Append of new data")
	}
	logTestExpect(t, l.Read(2, 1<<20, ReadUncommitted), b)
}

func TestLogReadThrough(t *testing.T) {
	l := NewLog(10, 1<<20, NewBudget(1<<20))
	l.Append(logTestChunk(t, 13, 13, logTestBatch(t, 10, 3, 0, -1)))
	for _, off := range []int64{0, 9, 14, 1 << 40} {
		if r := l.Read(off, 1<<20, ReadUncommitted); r.Status != ReadThrough {
			t.Errorf("offset %d: status %d, want ReadThrough", off, r.Status)
		}
	}
	if r := l.Read(13, 1<<20, ReadUncommitted); r.Status != Served {
		t.Errorf("offset at end: status %d, want Served", r.Status)
	}
}

// A fetch that asks for offset 5 gets the whole batch holding it, starting
// before 5; the window must widen to that batch's base.
func TestLogStartWidensToFirstBatch(t *testing.T) {
	l := NewLog(5, 1<<20, NewBudget(1<<20))
	a := logTestBatch(t, 3, 4, 0, -1)
	l.Append(logTestChunk(t, 7, 7, a))
	logTestExpect(t, l.Read(3, 1<<20, ReadUncommitted), a)
}

func TestLogMaxBytes(t *testing.T) {
	l := NewLog(0, 1<<20, NewBudget(1<<20))
	a, b, c := logTestBatch(t, 0, 1, 0, -1), logTestBatch(t, 1, 1, 0, -1), logTestBatch(t, 2, 1, 0, -1)
	l.Append(logTestChunk(t, 3, 3, a, b, c))
	logTestExpect(t, l.Read(0, int32(len(a)+len(b)), ReadUncommitted), a, b)
	logTestExpect(t, l.Read(0, int32(len(a)+len(b)-1), ReadUncommitted), a)
	// KIP-74: the first batch comes back even when larger than the limit.
	logTestExpect(t, l.Read(0, 1, ReadUncommitted), a)
	logTestExpect(t, l.Read(0, 0, ReadUncommitted), a)
	logTestExpect(t, l.Read(1, 1, ReadUncommitted), b)
}

func TestLogEvictsAtPartitionMax(t *testing.T) {
	a := logTestBatch(t, 0, 1, 0, -1)
	size := int64(len(a))
	budget := NewBudget(1 << 20)
	l := NewLog(0, 2*size, budget)
	var all [][]byte
	for i := int64(0); i < 5; i++ {
		raw := logTestBatch(t, i, 1, 0, -1)
		if int64(len(raw)) != size {
			t.Fatalf("batches differ in size; the test needs equal ones")
		}
		all = append(all, raw)
		l.Append(logTestChunk(t, i+1, i+1, raw))
		if l.Size() > 2*size {
			t.Fatalf("after batch %d the cache holds %d bytes, over its max %d", i, l.Size(), 2*size)
		}
		if budget.Used() != l.Size() {
			t.Fatalf("after batch %d the budget counts %d bytes, the cache holds %d", i, budget.Used(), l.Size())
		}
	}
	// Offsets 3 and 4 remain; 0..2 were evicted oldest first.
	for off := int64(0); off < 3; off++ {
		if r := l.Read(off, 1<<20, ReadUncommitted); r.Status != ReadThrough {
			t.Fatalf("evicted offset %d: status %d, want ReadThrough", off, r.Status)
		}
	}
	logTestExpect(t, l.Read(3, 1<<20, ReadUncommitted), all[3], all[4])

	// One chunk bigger than the max keeps its newest batches.
	var raws [][]byte
	for i := int64(5); i < 9; i++ {
		raws = append(raws, logTestBatch(t, i, 1, 0, -1))
	}
	l.Append(logTestChunk(t, 9, 9, raws...))
	if l.Size() != 2*size || budget.Used() != 2*size {
		t.Fatalf("size %d used %d, want %d", l.Size(), budget.Used(), 2*size)
	}
	logTestExpect(t, l.Read(7, 1<<20, ReadUncommitted), raws[2], raws[3])

	l.Release()
	if budget.Used() != 0 || l.Size() != 0 {
		t.Fatalf("after Release: used %d size %d, want 0", budget.Used(), l.Size())
	}
}

func TestLogEvictsAtNodeBudget(t *testing.T) {
	one := int64(len(logTestBatch(t, 0, 1, 0, -1)))
	budget := NewBudget(4 * one)
	x := NewLog(0, 1<<20, budget)
	y := NewLog(0, 1<<20, budget)
	for i := int64(0); i < 3; i++ {
		x.Append(logTestChunk(t, i+1, i+1, logTestBatch(t, i, 1, 0, -1)))
	}
	for i := int64(0); i < 3; i++ {
		y.Append(logTestChunk(t, i+1, i+1, logTestBatch(t, i, 1, 0, -1)))
		if budget.Used() > 4*one {
			t.Fatalf("budget holds %d bytes, over its max %d", budget.Used(), 4*one)
		}
		if budget.Used() != x.Size()+y.Size() {
			t.Fatalf("budget counts %d bytes, the caches hold %d", budget.Used(), x.Size()+y.Size())
		}
	}
	// y may only evict its own batches: x is untouched, y kept its newest.
	if x.Size() != 3*one {
		t.Fatalf("x holds %d bytes, want %d: another partition evicted its batches", x.Size(), 3*one)
	}
	if r := y.Read(2, 1<<20, ReadUncommitted); r.Status != Served || len(r.Batches) != 1 {
		t.Fatalf("y's newest batch: status %d, %d batches; want it served", r.Status, len(r.Batches))
	}
	x.Release()
	y.Release()
	if budget.Used() != 0 {
		t.Fatalf("after Release the budget still counts %d bytes", budget.Used())
	}
}

// Log.reserve documents that when other partitions have spent the node
// budget and this cache is empty, the chunk is kept anyway because its
// readers need it. A reader waiting at the chunk's offset must be served.
func TestLogKeepsChunkWhenBudgetSpentElsewhere(t *testing.T) {
	one := int64(len(logTestBatch(t, 0, 1, 0, -1)))
	budget := NewBudget(2 * one)
	x := NewLog(0, 1<<20, budget)
	x.Append(logTestChunk(t, 2, 2, logTestBatch(t, 0, 1, 0, -1), logTestBatch(t, 1, 1, 0, -1)))
	if budget.Used() != 2*one {
		t.Fatalf("x should fill the budget: used %d", budget.Used())
	}

	y := NewLog(0, 1<<20, budget)
	raw := logTestBatch(t, 0, 1, 0, -1)
	y.Append(logTestChunk(t, 1, 1, raw))
	if budget.Used() != x.Size()+y.Size() {
		t.Fatalf("budget counts %d bytes, the caches hold %d", budget.Used(), x.Size()+y.Size())
	}
	r := y.Read(0, 1<<20, ReadUncommitted)
	if r.Status != Served || len(r.Batches) != 1 {
		t.Fatalf("y dropped the chunk it was just given: status %d, %d batches, size %d, end %d", r.Status, len(r.Batches), y.Size(), y.End())
	}
	y.Release()
	x.Release()
	if budget.Used() != 0 {
		t.Fatalf("after Release the budget still counts %d bytes", budget.Used())
	}
}

func TestLogFailed(t *testing.T) {
	l := NewLog(0, 1<<20, NewBudget(1<<20))
	l.Append(logTestChunk(t, 1, 1, logTestBatch(t, 0, 1, 0, -1)))
	wait := l.Read(1, 1<<20, ReadUncommitted)
	code := kerr.OffsetOutOfRange.Code
	l.Append(&upstream.Chunk{Err: code})
	if !logTestClosed(wait.Notify) {
		t.Fatal("a waiting reader was not woken by the error")
	}
	for _, off := range []int64{0, 1, 99} {
		r := l.Read(off, 1<<20, ReadCommitted)
		if r.Status != Failed || r.Err != code {
			t.Fatalf("offset %d: status %d err %d, want Failed with %d", off, r.Status, r.Err, code)
		}
	}
}

// txnLog caches, from offset 0:
//
//	0-1 txn data pid 7   2 abort pid 7   3 plain   4 txn data pid 8
//	5 commit pid 8       6-7 txn data pid 9 (still open)
func txnLog(t *testing.T) (*Log, [][]byte) {
	raws := [][]byte{
		logTestBatch(t, 0, 2, 0x10, 7),
		logTestMarker(t, 2, 7, false),
		logTestBatch(t, 3, 1, 0, -1),
		logTestBatch(t, 4, 1, 0x10, 8),
		logTestMarker(t, 5, 8, true),
		logTestBatch(t, 6, 2, 0x10, 9),
	}
	l := NewLog(0, 1<<20, NewBudget(1<<20))
	l.Append(logTestChunk(t, 8, 6, raws...))
	return l, raws
}

func TestLogReadCommitted(t *testing.T) {
	l, raws := txnLog(t)

	r := l.Read(0, 1<<20, ReadCommitted)
	logTestExpect(t, r, raws[:5]...) // stops at the last stable offset, 6
	want := AbortedTxn{ProducerID: 7, FirstOffset: 0, LastOffset: 2}
	if len(r.Aborted) != 1 || r.Aborted[0] != want {
		t.Fatalf("aborted = %+v, want only %+v (pid 8 committed, pid 9 open)", r.Aborted, want)
	}

	// read_uncommitted goes to the end and reports no aborted transactions.
	r = l.Read(0, 1<<20, ReadUncommitted)
	logTestExpect(t, r, raws...)
	if len(r.Aborted) != 0 {
		t.Fatalf("read_uncommitted got aborted transactions %+v", r.Aborted)
	}

	// Past the abort marker, the aborted transaction is out of range.
	r = l.Read(3, 1<<20, ReadCommitted)
	logTestExpect(t, r, raws[2:5]...)
	if len(r.Aborted) != 0 {
		t.Fatalf("read from 3 got aborted transactions %+v", r.Aborted)
	}

	// A read cut short after the first aborted batch still reports the
	// transaction: the client needs it to drop that batch.
	r = l.Read(0, 1, ReadCommitted)
	logTestExpect(t, r, raws[0])
	if len(r.Aborted) != 1 || r.Aborted[0] != want {
		t.Fatalf("aborted = %+v for a read of the first batch only, want %+v", r.Aborted, want)
	}

	// Between the last stable offset and the end, read_committed has
	// nothing to give yet.
	r = l.Read(6, 1<<20, ReadCommitted)
	if r.Status != Served || len(r.Batches) != 0 {
		t.Fatalf("read_committed above the LSO: status %d, %d batches", r.Status, len(r.Batches))
	}

	// The open transaction aborts: the LSO moves to the end and pid 9's
	// batches are reported aborted.
	l.Append(logTestChunk(t, 9, 9, logTestMarker(t, 8, 9, false)))
	r = l.Read(6, 1<<20, ReadCommitted)
	if len(r.Batches) != 2 {
		t.Fatalf("after the abort marker: %d batches, want 2", len(r.Batches))
	}
	want9 := AbortedTxn{ProducerID: 9, FirstOffset: 6, LastOffset: 8}
	if len(r.Aborted) != 1 || r.Aborted[0] != want9 {
		t.Fatalf("aborted = %+v, want %+v", r.Aborted, want9)
	}
}

// An abort marker for a transaction that began before the cache window
// reports every cached offset from the window start as aborted.
func TestLogAbortBeganBeforeWindow(t *testing.T) {
	l := NewLog(10, 1<<20, NewBudget(1<<20))
	l.Append(logTestChunk(t, 13, 13, logTestBatch(t, 10, 2, 0x10, 4), logTestMarker(t, 12, 5, false)))
	r := l.Read(10, 1<<20, ReadCommitted)
	want := AbortedTxn{ProducerID: 5, FirstOffset: 10, LastOffset: 12}
	found := false
	for _, a := range r.Aborted {
		if a == want {
			found = true
		}
	}
	if !found {
		t.Fatalf("aborted = %+v, want %+v among them", r.Aborted, want)
	}
}

func TestLogAbortedTrimmedOnEviction(t *testing.T) {
	raws := [][]byte{
		logTestBatch(t, 0, 2, 0x10, 7),
		logTestMarker(t, 2, 7, false),
		logTestBatch(t, 3, 1, 0x10, 8),
		logTestMarker(t, 4, 8, false),
	}
	var total int64
	for _, r := range raws {
		total += int64(len(r))
	}
	l := NewLog(0, total, NewBudget(1<<20))
	l.Append(logTestChunk(t, 5, 5, raws...))
	if len(l.aborted) != 2 {
		t.Fatalf("tracking %d aborted transactions, want 2", len(l.aborted))
	}
	// Each new batch pushes out an old one; once pid 7's marker (offset 2)
	// is gone its entry must go too, while pid 8's stays until offset 4 is.
	for i := int64(5); i < 10; i++ {
		l.Append(logTestChunk(t, i+1, i+1, logTestBatch(t, i, 1, 0, -1)))
		for _, a := range l.aborted {
			if a.LastOffset < l.start {
				t.Fatalf("after offset %d: start %d but still tracking %+v", i, l.start, a)
			}
		}
	}
	if l.start <= 4 {
		t.Fatalf("start %d: the test did not evict past both markers", l.start)
	}
	if len(l.aborted) != 0 {
		t.Fatalf("still tracking %+v after their batches were evicted", l.aborted)
	}
}

// The stream runs at most half the cache ahead of the furthest reader, so
// a reader slower than upstream is never overtaken by evictions; a reader
// that stopped reading paces nothing for long.
func TestLogHungryPacesTheStream(t *testing.T) {
	one := int64(len(logTestBatch(t, 0, 1, 0, -1)))
	l := NewLog(0, 8*one, NewBudget(1<<20))
	now := time.Unix(1000, 0)
	if !l.Hungry(now) {
		t.Fatal("no reader yet: the stream must run")
	}
	l.Saw(0, now)
	for i := int64(0); i < 3; i++ {
		l.Append(logTestChunk(t, 100, 100, logTestBatch(t, i, 1, 0, -1)))
		if !l.Hungry(now) {
			t.Fatalf("%d batches ahead of the reader, below half the cache: the stream must run", i+1)
		}
	}
	l.Append(logTestChunk(t, 100, 100, logTestBatch(t, 3, 1, 0, -1)))
	if l.Hungry(now) {
		t.Fatal("half the cache ahead of the only reader: the stream must wait")
	}
	// A reader behind the furthest one moves nothing.
	l.Saw(0, now.Add(time.Second))
	if l.Hungry(now.Add(time.Second)) {
		t.Fatal("a reader behind the front released the stream")
	}
	l.Saw(2, now.Add(time.Second))
	if !l.Hungry(now.Add(time.Second)) {
		t.Fatal("the reader moved on: the stream must run again")
	}
	for i := int64(4); i < 6; i++ {
		l.Append(logTestChunk(t, 100, 100, logTestBatch(t, i, 1, 0, -1)))
	}
	if l.Hungry(now.Add(time.Second)) {
		t.Fatal("half the cache ahead of the reader again: the stream must wait")
	}
	// Nothing evicted what the reader has not read.
	if r := l.Read(2, 1<<20, ReadUncommitted); r.Status != Served || len(r.Batches) != 4 {
		t.Fatalf("reader at 2: status %d, %d batches, want 4 served", r.Status, len(r.Batches))
	}
	if !l.Hungry(now.Add(time.Second + readerFresh + time.Millisecond)) {
		t.Fatal("the reader stopped reading long ago: the stream must run")
	}
	// A reader ahead of what the stream has reached wants it to hurry.
	l.Saw(50, now.Add(2*time.Second))
	if !l.Hungry(now.Add(2 * time.Second)) {
		t.Fatal("a reader beyond the cached end: the stream must run")
	}
}

// A read below the window restarts the stream at its offset only when no
// reader reads the window: the cache chases a lone reader instead of
// leaving it to read through, and never leaves readers of the window for
// one behind them.
func TestLogRestartChasesALoneReader(t *testing.T) {
	l := NewLog(100, 1<<20, NewBudget(1<<20))
	now := time.Unix(1000, 0)
	if l.Restart(0, now) {
		t.Fatal("before any upstream answer the window is unknown: no restart")
	}
	l.Append(logTestChunk(t, 110, 110, logTestBatch(t, 100, 10, 0, -1)))
	if !l.Restart(0, now) {
		t.Fatal("nobody reads the window: a reader below it must restart the stream")
	}
	l.Saw(105, now)
	if l.Restart(0, now.Add(time.Second)) {
		t.Fatal("a reader reads the window: one below it reads through")
	}
	if l.Restart(105, now) || l.Restart(110, now) || l.Restart(500, now) {
		t.Fatal("reads in the window, at its end or beyond it never restart")
	}
	if !l.Restart(0, now.Add(readerFresh+time.Second)) {
		t.Fatal("the window's reader stopped long ago: restart")
	}
	l.SetLogStart(50)
	if l.Restart(10, now.Add(readerFresh+time.Second)) {
		t.Fatal("below upstream's log start: read through, for OFFSET_OUT_OF_RANGE")
	}
}
