package test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testenv"
)

// stallFor is how long upstream answers nothing in TestUpstreamStall:
// longer than a client's idea of a quick answer, shorter than the request
// timeouts on either side.
const stallFor = 10 * time.Second

// Upstream stops answering for a while (it takes requests and holds them)
// while an idempotent producer writes and a group member consumes through
// meshka. Afterwards everything resumes: every record is upstream exactly
// once and in order, every record is consumed, and the group's committed
// offsets never moved back.
func TestUpstreamStall(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 2*time.Minute)
	const topic, group, parts, n = "stall", "stall-grp", 3, 6000
	createTopic(t, ctx, env.Client(t), topic, parts, nil)

	var stalled atomic.Bool
	resume := make(chan struct{})
	var held atomic.Int64
	env.Upstream.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		if stalled.Load() {
			held.Add(1)
			env.Upstream.SleepControl(func() { <-resume })
		}
		return nil, nil, false
	})

	prod := newSeqProducer(t, env, topic, parts, kgo.ProducerBatchMaxBytes(smallBatch))
	seen := newSeqLog()
	m := newMember(t, []string{env.Addr()}, "stall-reader", group, topic, kgo.FetchMaxPartitionBytes(4<<10))
	m.consume(seen, 0)

	produce := func(count int) {
		for i := 0; i < count; i++ {
			prod.produce(ctx)
		}
	}
	produce(n / 3)
	waitFor(t, ctx, "a third of the records consumed", func() bool { return seen.distinct() >= n/3 })
	before := committed(t, ctx, env.DirectClient(t), group, topic)

	stalled.Store(true)
	produce(n / 3) // buffered by the producer, sent and held during the stall
	time.Sleep(stallFor)
	stalled.Store(false)
	close(resume)
	if held.Load() == 0 {
		t.Fatal("upstream held no request during the stall; the test proved nothing")
	}
	produce(n - 2*(n/3))
	prod.finish(ctx)
	waitFor(t, ctx, fmt.Sprintf("all %d records consumed", n), func() bool { return seen.distinct() == n })
	if err := m.stop(ctx); err != nil {
		t.Errorf("last commit: %v", err)
	}
	m.close()

	checkSequence(t, ctx, env, topic, parts, n)
	dups := seen.check(t, n)
	seen.mu.Lock()
	for _, v := range dups {
		if at := seen.at[v]; at[1] < before[int32(at[0])] {
			t.Errorf("record %d at %d/%d consumed twice though committed (%d) before the stall", v, at[0], at[1], before[int32(at[0])])
		}
	}
	seen.mu.Unlock()
	after := committed(t, ctx, env.DirectClient(t), group, topic)
	for p, o := range before {
		if after[p] < o {
			t.Errorf("partition %d: committed offset %d after the stall, %d before", p, after[p], o)
		}
	}
	checkCommittedAtEnd(t, ctx, env, group, topic)
}
