package partition

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/internal/ratelog"
)

// testFeed is a feed with a cache and no upstream stream, as one is between
// its stream's chunks.
func testFeed(tb testing.TB) *feed {
	tb.Helper()
	return &feed{topic: "t", partition: 0, budget: NewBudget(1 << 20), maxBytes: 1 << 20, log: slog.Default(),
		notices: ratelog.New(slog.Default(), time.Second), cache: NewLog(0, 1<<20, NewBudget(1<<20)), restart: func() {}}
}

func TestFeedsReadAndClose(t *testing.T) {
	fs := NewFeeds()
	if _, ok := fs.Read("default/t/0", 0, 1<<20, ReadUncommitted); ok {
		t.Fatal("read of a partition with no actor here: ok")
	}
	f := testFeed(t)
	a := logTestBatch(t, 0, 3, 0, -1)
	f.cache.Append(logTestChunk(t, 3, 3, a))
	fs.add("default/t/0", f)
	r, ok := fs.Read("default/t/0", 0, 1<<20, ReadUncommitted)
	if !ok {
		t.Fatal("read of a running partition: not ok")
	}
	logTestExpect(t, r, a)

	// A successor's feed is not removed by its predecessor.
	g := testFeed(t)
	fs.add("default/t/0", g)
	fs.remove("default/t/0", f)
	if v, _ := fs.m.Load("default/t/0"); v != g {
		t.Fatal("removing the old feed removed its successor")
	}

	g.close()
	r, ok = fs.Read("default/t/0", 0, 1<<20, ReadUncommitted)
	if ok || r.Status != Failed || r.Err != kerr.NotLeaderForPartition.Code {
		t.Fatalf("read of a closed feed: ok %v, %+v; want !ok and NOT_LEADER_OR_FOLLOWER", ok, r)
	}
	if g.cache != nil {
		t.Fatal("close kept the cache")
	}
}

// Readers on several goroutines read while the stream's goroutine
// appends: every reader gets every batch once, in order (the race
// detector checks the rest).
func TestFeedConcurrentReads(t *testing.T) {
	f := testFeed(t)
	const n = 200
	var raws [][]byte
	for i := int64(0); i < n; i++ {
		raws = append(raws, logTestBatch(t, i, 1, 0, -1))
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for off := int64(0); off < n; {
				r, ok := f.read(off, 1<<20, ReadUncommitted)
				if !ok || r.Status != Served {
					t.Errorf("read at %d: ok %v status %d", off, ok, r.Status)
					return
				}
				if len(r.Batches) == 0 {
					<-r.Notify
					continue
				}
				for _, b := range r.Batches {
					if string(b) != string(raws[off]) {
						t.Errorf("batch at %d differs", off)
						return
					}
					off++
				}
			}
		}()
	}
	for i := range raws {
		f.Deliver(nil, logTestChunk(t, int64(i+1), int64(i+1), raws[i])) // the feed's sub is nil too
	}
	wg.Wait()
}
