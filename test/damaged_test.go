package test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testenv"
)

// A partition whose data upstream cannot return as whole batches (a damaged
// segment) is answered with CORRUPT_MESSAGE once meshka's stream has met
// it, so a reader through meshka gets an error instead of waiting forever.
func TestFetchDamagedPartition(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 60*time.Second)
	const topic = "damaged"
	createTopic(t, ctx, env.Client(t), topic, 1, nil)
	// A batch header announcing 1000 bytes, followed by 50.
	damaged := make([]byte, 62)
	binary.BigEndian.PutUint32(damaged[8:12], 1000)
	damaged[16] = 2 // magic
	env.Upstream.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		env.Upstream.KeepControl()
		req := kreq.(*kmsg.FetchRequest)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition, sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = rp.Partition, 3, 3, 0
				sp.RecordBatches = damaged
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	cl := env.Client(t)
	for attempt := 0; ; attempt++ {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = 100, 1<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("fetch %d: %v", attempt, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("fetch %d: answer names %d topics", attempt, len(resp.Topics))
		}
		switch code := resp.Topics[0].Partitions[0].ErrorCode; code {
		case kerr.CorruptMessage.Code:
			return
		case 0:
			// The first read of a cold partition goes straight to
			// upstream, whose bytes the client gets as they are.
		default:
			t.Fatalf("fetch %d: %v, want CORRUPT_MESSAGE", attempt, kerr.ErrorForCode(code))
		}
	}
}
