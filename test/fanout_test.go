package test

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
)

// 100 readers of one partition through meshka cost upstream at most 1.2
// times the bytes one direct reader draws: the partition actor fetches once
// and fans out. Upstream's bytes are counted on its own sockets.
func TestFanOutUpstreamBytes(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 3*time.Minute)
	const topic, n, readers = "fanout", 4000, 100
	createTopic(t, ctx, env.DirectClient(t), topic, 1, nil)
	p := env.DirectClient(t, kgo.DefaultProduceTopic(topic))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		value := make([]byte, 1024) // random, so compression cannot shrink it
		for j := range value {
			value[j] = byte(rng.Uint32())
		}
		p.Produce(ctx, &kgo.Record{Value: value}, failed(t))
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()

	consumeAll := func(cl *kgo.Client) error {
		got := 0
		for got < n {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fs.Err0(); err != nil {
				return err
			}
			got += fs.NumRecords()
		}
		return nil
	}
	opts := []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}})}

	before := env.UpstreamSent.Load()
	direct := env.DirectClient(t, opts...)
	if err := consumeAll(direct); err != nil {
		t.Fatal(err)
	}
	direct.Close()
	one := env.UpstreamSent.Load() - before
	if one < n*1024 {
		t.Fatalf("one direct reader drew %d bytes, less than the %d bytes of data: counting is broken", one, n*1024)
	}

	before = env.UpstreamSent.Load()
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i := 0; i < readers; i++ {
		cl := env.Client(t, opts...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- consumeAll(cl)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	many := env.UpstreamSent.Load() - before
	ratio := float64(many) / float64(one)
	t.Logf("one direct reader: %d upstream bytes; %d readers through meshka: %d upstream bytes (%.3fx)", one, readers, many, ratio)
	if ratio > 1.2 {
		t.Fatalf("%d readers through meshka drew %.2fx one direct reader's upstream bytes, want <= 1.2", readers, ratio)
	}
}

// A reader far behind the end that reads slower than upstream answers,
// through a cache smaller than its backlog, is read from upstream once:
// the partition's stream waits for it instead of running ahead and
// evicting what it has not read yet (which then had to be read through
// from upstream a second time).
func TestSlowBacklogReaderReadsUpstreamOnce(t *testing.T) {
	const cacheBytes = 8 << 20
	env := testenv.Start(t, func(c *config.Config) {
		c.Cache.PartitionMaxBytes = cacheBytes
	})
	ctx := timeout(t, 3*time.Minute)
	const topic, n = "slow-backlog", 24 << 10 // 24 MiB of 1 KiB values: three caches' worth
	createTopic(t, ctx, env.DirectClient(t), topic, 1, nil)
	p := env.DirectClient(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchMaxBytes(64<<10))
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < n; i++ {
		value := make([]byte, 1024)
		for j := range value {
			value[j] = byte(rng.Uint32())
		}
		p.Produce(ctx, &kgo.Record{Value: value}, nil)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()

	before := env.UpstreamSent.Load()
	cl := env.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}))
	var got int64
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("after %d records: %v", got, err)
		}
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != got {
				t.Fatalf("got offset %d, want %d", r.Offset, got)
			}
			got++
		})
		// Slower than upstream: the stream would be at the end long
		// before this reader is, were it not waiting for it.
		time.Sleep(100 * time.Millisecond)
	}
	cl.Close()
	sent := env.UpstreamSent.Load() - before
	ratio := float64(sent) / float64(n*1024)
	t.Logf("upstream sent %d bytes for %d bytes of values (%.3fx)", sent, n*1024, ratio)
	if ratio > 1.2 {
		t.Fatalf("upstream sent %.2fx the backlog for one reader, want <= 1.2: what the reader had not read was evicted and read again", ratio)
	}
}
