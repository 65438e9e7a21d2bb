package partition

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkLogRead reads a log of 10,000 cached batches (10 records each)
// at random offsets, as readers at different positions do, with a 1 MiB
// limit.
func BenchmarkLogRead(b *testing.B) {
	const batches, perBatch = 10000, 10
	l := NewLog(0, 1<<40, NewBudget(1<<40))
	raw := logTestBatch(b, 0, perBatch, 0, -1)
	for i := range batches {
		// Rebasing one encoded batch is enough: Read looks at offsets
		// and lengths, not at records or CRCs.
		bt := append([]byte(nil), raw...)
		putBase(bt, int64(i*perBatch))
		l.Append(logTestChunk(b, int64((i+1)*perBatch), int64((i+1)*perBatch), bt))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		r := l.Read(rng.Int64N(batches*perBatch), 1<<20, ReadUncommitted)
		if r.Status != Served || r.Bytes == 0 {
			b.Fatalf("read: status %d, %d bytes", r.Status, r.Bytes)
		}
	}
}

func putBase(b []byte, base int64) {
	for i := range 8 {
		b[i] = byte(base >> (56 - 8*i))
	}
}
