package records_test

import (
	"testing"

	"github.com/meshka/meshka/records"
)

// BenchmarkSplit walks 1 MiB of 16-record batches, as the upstream stream
// does with every fetched chunk before the cache takes it.
func BenchmarkSplit(b *testing.B) {
	one := encodeBatch(b, 0, 0, -1, valueRecords(16)...)
	var buf []byte
	for len(buf) < 1<<20 {
		buf = append(buf, one...)
	}
	var dst []records.Batch
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		var err error
		if dst, _, err = records.Split(buf, dst); err != nil {
			b.Fatal(err)
		}
	}
}
