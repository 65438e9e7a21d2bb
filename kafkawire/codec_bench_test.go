package kafkawire

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testbatch"
)

// benchBatch is a magic 2 record batch of n records with size-byte values,
// CRC included, built with kmsg so the bytes are what clients send.
func benchBatch(base int64, n, size int) []byte {
	recs := make([]kmsg.Record, n)
	val := make([]byte, size)
	for i := range recs {
		recs[i].Value = val
	}
	hdr := testbatch.NoProducer()
	hdr.FirstOffset, hdr.PartitionLeaderEpoch = base, 0
	return testbatch.Encode(hdr, recs...)
}

// BenchmarkDecodeProduce is what the read goroutine does with one Produce
// v9 frame (flexible, one 16 KiB batch) before the handler runs: the size
// check, the header, the flexible header's tags and kmsg's body decode.
func BenchmarkDecodeProduce(b *testing.B) {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "bench"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = benchBatch(0, 16, 1000)
	rt.Partitions = []kmsg.ProduceRequestTopicPartition{rp}
	req.Topics = []kmsg.ProduceRequestTopic{rt}
	wire := kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench")).AppendRequest(nil, req, 7)

	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		size, err := checkSize([4]byte(wire[:4]), 100<<20)
		if err != nil {
			b.Fatal(err)
		}
		h, err := parseHeader(wire[4 : 4+size])
		if err != nil {
			b.Fatal(err)
		}
		body, err := skipTags(h.body)
		if err != nil {
			b.Fatal(err)
		}
		got := kmsg.RequestForKey(h.key)
		got.SetVersion(h.version)
		if err := got.ReadFrom(body); err != nil {
			b.Fatal(err)
		}
	}
}

// benchFetchResponse is a one-partition Fetch response at version with
// records as its record batches.
func benchFetchResponse(version int16, records []byte) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = version
	t := kmsg.NewFetchResponseTopic()
	t.Topic = "bench"
	p := kmsg.NewFetchResponseTopicPartition()
	p.HighWatermark, p.LastStableOffset, p.LogStartOffset = 1<<20, 1<<20, 0
	p.RecordBatches = records
	t.Partitions = []kmsg.FetchResponseTopicPartition{p}
	resp.Topics = []kmsg.FetchResponseTopic{t}
	return resp
}

// BenchmarkAppendResponseFetch encodes a Fetch v12 response holding 1 MiB
// of records with appendResponse into a reused buffer: the encoding every
// response that is not spliced goes through.
func BenchmarkAppendResponseFetch(b *testing.B) {
	var records []byte
	for len(records) < 1<<20 {
		records = append(records, benchBatch(int64(len(records)), 16, 1000)...)
	}
	resp := benchFetchResponse(12, records[:1<<20])
	item := &inflight{key: 1, version: 12, corrID: 9}
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(1 << 20)
	for b.Loop() {
		buf = appendResponse(buf[:0], item, resp)
	}
}
