package records_test

import (
	"fmt"
	"testing"

	"github.com/meshka/meshka/records"
)

// BenchmarkDecodeBatch decodes a 1 MiB batch of 1 KiB values into a
// reused dst, as a reader of the records API does with each fetched batch.
func BenchmarkDecodeBatch(b *testing.B) {
	var recs []records.Record
	for i := 0; len(recs)*1040 < 1<<20; i++ {
		v := make([]byte, 1024)
		for j := range v {
			v[j] = "meshka records "[(i+j)%15]
		}
		recs = append(recs, records.Record{Timestamp: 1_700_000_000_000 + int64(i), Key: fmt.Appendf(nil, "key-%06d", i), Value: v})
	}
	for _, c := range allCodecs {
		b.Run(c.String(), func(b *testing.B) {
			batch := encode(b, recs, c)
			dst, err := records.DecodeBatch(batch, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(recs) * 1024))
			for b.Loop() {
				if dst, err = records.DecodeBatch(batch, dst[:0]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(batch)), "batch-bytes")
		})
	}
}
