package test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
)

// A bootstrap topic is streamed into the cache with no reader, so the first
// reader is served from memory: reading it costs upstream almost nothing.
func TestBootstrapTopicStaysWarm(t *testing.T) {
	env := testenv.StartWith(t, []kfake.Opt{kfake.SeedTopics(1, "warm")}, func(c *config.Config) {
		c.Cache.Bootstrap = []string{"warm"}
	})
	ctx := timeout(t, 60*time.Second)
	p := env.DirectClient(t, kgo.DefaultProduceTopic("warm"))
	rng := rand.New(rand.NewPCG(3, 4))
	produce := func(n int) {
		for i := 0; i < n; i++ {
			v := make([]byte, 1024)
			for j := range v {
				v[j] = byte(rng.Uint32())
			}
			p.Produce(ctx, &kgo.Record{Value: v}, failed(t))
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Until the warm-up stream is running, data written lands before its
	// start; keep writing until the cache holds some.
	written := 0
	for env.Node.CacheBytes() == 0 {
		produce(10)
		written += 10
		if ctx.Err() != nil {
			t.Fatal("bootstrap topic never cached")
		}
		time.Sleep(50 * time.Millisecond)
	}
	const n = 2000
	start := int64(written)
	produce(n)
	for env.Node.CacheBytes() < n*1024 {
		if ctx.Err() != nil {
			t.Fatalf("cache holds %d bytes, want the %d written", env.Node.CacheBytes(), n*1024)
		}
		time.Sleep(20 * time.Millisecond)
	}

	before := env.UpstreamSent.Load()
	c := env.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"warm": {0: kgo.NewOffset().At(start)}}))
	got := consumeN(t, ctx, c, n)
	if got[0].Offset != start {
		t.Fatalf("first record at %d, want %d", got[0].Offset, start)
	}
	drawn := env.UpstreamSent.Load() - before
	t.Logf("reading %d KiB from a warm cache drew %d upstream bytes", n, drawn)
	if drawn > n*1024/10 {
		t.Fatalf("reading a warm topic drew %d upstream bytes, want under a tenth of the %d read", drawn, n*1024)
	}

	// Offsets below the cache window are read through from upstream.
	below := env.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"warm": {0: kgo.NewOffset().At(0)}}))
	all := consumeN(t, ctx, below, written+n)
	for i, r := range all {
		if r.Offset != int64(i) {
			t.Fatalf("record %d has offset %d: a gap or a duplicate at the window's edge", i, r.Offset)
		}
	}
}
