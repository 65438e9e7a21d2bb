package kafkawire

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// spliceCase builds a Fetch response at version with partitions of every
// kind a real one holds: spliced cached batches (one and several),
// read-through data already in RecordBatches, an error, aborted
// transactions and, where the version has them, a preferred read replica
// and tagged fields. It returns the response ready for splicing and the
// same response with every batch copied in, as kmsg alone would encode it.
func spliceCase(version int16) (*splicedFetch, *kmsg.FetchResponse) {
	batch := func(base int64, n int) []byte { return benchBatch(base, n, 100+int(base)) }
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = version
	resp.ThrottleMillis = 7
	var parts []*fetchPart
	for ti, name := range []string{"alpha", "beta-topic"} {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = name
		t.Partitions = make([]kmsg.FetchResponseTopicPartition, 5)
		resp.Topics = append(resp.Topics, t)
		for pi := range t.Partitions {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = int32(pi)
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = int64(1000*ti+pi), int64(900+pi), 3
			p.RecordBatches = []byte{}
			switch pi {
			case 0: // spliced, several batches
				parts = append(parts, &fetchPart{batches: [][]byte{batch(10, 3), batch(13, 1), batch(14, 40)}})
			case 1: // read through: upstream's bytes, not spliced
				p.RecordBatches = batch(50, 2)
			case 2: // an error
				p.ErrorCode = 6
			case 3: // spliced, read_committed with aborted transactions
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = 42, 11
				p.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{at, at}
				p.PreferredReadReplica = 2
				parts = append(parts, &fetchPart{batches: [][]byte{batch(int64(ti*100), 200)}})
			case 4: // nothing new
			}
			if version >= 12 && pi == 3 {
				p.DivergingEpoch.Epoch, p.DivergingEpoch.EndOffset = 4, 99
				p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = 1, 5
			}
			resp.Topics[ti].Partitions[pi] = p
			if pi == 0 || pi == 3 {
				fp := parts[len(parts)-1]
				fp.out = &resp.Topics[ti].Partitions[pi]
				for _, b := range fp.batches {
					fp.bytes += len(b)
				}
			}
		}
	}
	full := kmsg.NewPtrFetchResponse()
	*full = *resp
	full.Topics = nil
	for _, t := range resp.Topics {
		t.Partitions = append([]kmsg.FetchResponseTopicPartition(nil), t.Partitions...)
		full.Topics = append(full.Topics, t)
	}
	pi := 0
	for ti := range full.Topics {
		for i := range full.Topics[ti].Partitions {
			if i == 0 || i == 3 {
				full.Topics[ti].Partitions[i].RecordBatches = bytes.Join(parts[pi].batches, nil)
				pi++
			}
		}
	}
	return &splicedFetch{FetchResponse: resp, parts: parts}, full
}

// written is what an outbox hands the connection.
func written(t *testing.T, o *outbox) []byte {
	t.Helper()
	var w bytes.Buffer
	if err := o.flush(&w); err != nil {
		t.Fatal(err)
	}
	return w.Bytes()
}

// TestSpliceEqualsKmsg checks that the spliced frame is byte for byte the
// frame kmsg encodes with the batches copied in, for every Fetch version
// meshka serves from the cache, flexible and not.
func TestSpliceEqualsKmsg(t *testing.T) {
	for v := int16(cachedFetchVersion); v <= 12; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			sp, full := spliceCase(v)
			item := &inflight{key: 1, version: v, corrID: 77}
			want := appendResponse(nil, item, full)

			batches := 0
			for _, p := range sp.parts {
				batches += len(p.batches)
			}
			o := new(outbox)
			sp.splice(o, item)
			segs := 0
			for _, sg := range o.segs {
				if sg.ext != nil {
					segs++
				}
			}
			if segs != batches {
				t.Errorf("%d batches written from the cache's buffers, want all %d", segs, batches)
			}
			if o.size != len(want) {
				t.Errorf("outbox size %d, want %d", o.size, len(want))
			}
			if got := written(t, o); !bytes.Equal(got, want) {
				t.Fatalf("spliced frame differs from kmsg's encoding: %d bytes vs %d", len(got), len(want))
			}
		})
	}
}

// TestOutboxKeepsOrder checks that answers gathered into one write come
// out in order, ordinary and spliced ones mixed, and that a released
// outbox holds no reference to cached batches.
func TestOutboxKeepsOrder(t *testing.T) {
	var want []byte
	o := new(outbox)
	for i := range 3 {
		av := kmsg.NewPtrApiVersionsResponse()
		av.ErrorCode = int16(i)
		item := &inflight{key: apiVersionsKey, version: 0, corrID: int32(2 * i)}
		want = append(want, appendResponse(nil, item, av)...)
		o.add(item, av)

		sp, full := spliceCase(11)
		item = &inflight{key: 1, version: 11, corrID: int32(2*i + 1)}
		want = append(want, appendResponse(nil, item, full)...)
		o.add(item, sp)
	}
	if got := written(t, o); !bytes.Equal(got, want) {
		t.Fatal("gathered answers differ from their encodings in order")
	}
	o.release()
	for _, sg := range o.segs[:cap(o.segs)] {
		if sg.ext != nil {
			t.Fatal("released outbox still references a batch")
		}
	}
	for _, b := range o.iov[:cap(o.iov)] {
		if b != nil {
			t.Fatal("released outbox still references a buffer")
		}
	}
}
