package kafkawire

import (
	"io"
	"testing"

	"github.com/meshka/meshka/actors/partition"
)

// BenchmarkFetchAssembly goes from a cache ReadResult of 64 batches (16 KiB
// each, 1 MiB in all) to the bytes handed to the connection: the fetch
// handler's last step, the write goroutine's encoding and its write.
func BenchmarkFetchAssembly(b *testing.B) {
	r := partition.ReadResult{HighWatermark: 64 * 16, LastStableOffset: 64 * 16, LogStartOffset: 0}
	for i := range 64 {
		bt := benchBatch(int64(i*16), 16, 1000)
		r.Batches = append(r.Batches, bt)
		r.Bytes += len(bt)
	}
	item := &inflight{key: 1, version: 12, corrID: 9}
	b.ReportAllocs()
	b.SetBytes(int64(r.Bytes))
	for b.Loop() {
		resp := benchFetchResponse(12, []byte{})
		p := &fetchPart{out: &resp.Topics[0].Partitions[0], batches: r.Batches, bytes: r.Bytes}
		o := outboxes.Get().(*outbox)
		o.add(item, &splicedFetch{FetchResponse: resp, parts: []*fetchPart{p}})
		if err := o.flush(io.Discard); err != nil {
			b.Fatal(err)
		}
		o.release()
	}
}
