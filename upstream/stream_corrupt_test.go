package upstream

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// chanSink hands a stream's chunks to the test.
type chanSink chan *Chunk

func (s chanSink) Deliver(sub *Subscription, c *Chunk) {
	s <- c
	sub.Done()
}

// A partition whose data upstream cannot return as a whole batch (a damaged
// segment: the batch's length runs past the bytes there) ends its stream
// with CORRUPT_MESSAGE for the readers, rather than being asked for again
// forever while they wait.
func TestStreamCorruptData(t *testing.T) {
	e := startPipeEnv(t, 1, "damaged")
	batch := testBatch("a", "b", "c")
	damaged := batch[:len(batch)-7]
	e.cluster.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.KeepControl()
		req := kreq.(*kmsg.FetchRequest)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range req.Topics {
			t := kmsg.NewFetchResponseTopic()
			t.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				p := kmsg.NewFetchResponseTopicPartition()
				p.Partition, p.HighWatermark, p.LastStableOffset, p.LogStartOffset = rp.Partition, 3, 3, 0
				p.RecordBatches = damaged
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp, nil, true
	})

	sink := make(chanSink, 16)
	sub := e.c.Streams().Subscribe("damaged", 0, 0, sink)
	defer sub.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		select {
		case c := <-sink:
			if len(c.Batches) > 0 {
				t.Fatalf("a damaged batch was delivered as %d batches", len(c.Batches))
			}
			if c.Err == 0 {
				continue // a watermark-only chunk
			}
			if c.Err != kerr.CorruptMessage.Code {
				t.Fatalf("stream ended with %v, want CORRUPT_MESSAGE", kerr.ErrorForCode(c.Err))
			}
			return
		case <-ctx.Done():
			t.Fatal("no chunk ended the stream: readers would wait forever")
		}
	}
}
