package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/node"
)

const (
	fanoutPreload      = 64 << 20
	fanoutPreloadQuick = 16 << 20
	// fanoutBigN runs only when the earlier cases show it fits the time
	// budget and memory.
	fanoutBigN = 1000
	// readerMemEstimate is a generous per-reader memory bound for the
	// N=1000 check: a franz-go consumer buffers about one 1 MiB fetch,
	// plus its decoded records and client state; the whole process peaked
	// at about 5.8 GiB RSS with 1000 readers.
	readerMemEstimate = 8 << 20
)

// runFanout is P3/P4: N independent readers of one preloaded partition,
// direct (upstream serves N copies) and through meshka (upstream should
// serve one, the partition cache the rest).
func runFanout(b *bench) section {
	s := section{}
	preload := int64(fanoutPreload)
	ns := []int{1, 10, 100}
	if b.opts.quick {
		preload = fanoutPreloadQuick
	} else {
		ns = append(ns, fanoutBigN)
	}
	records := preload / valueSize
	// The cache must hold the whole preload, or readers that fall behind
	// the evicted head are read through from upstream and the byte count
	// measures eviction rather than sharing.
	cacheBytes := max(config.Size(2*preload), config.Default().Cache.PartitionMaxBytes)
	tune := cacheHolding(cacheBytes)

	fail := func(msg string) section {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+msg)
		return s
	}
	// One preloaded topic serves every run: readers only read, so runs
	// cannot disturb each other's data, and preloading per run would
	// spend the time budget on writes.
	up, topic, err := preloadedUpstream(b, "P3/P4", "bench-fanout", records)
	if err != nil {
		return fail(err.Error())
	}
	defer up.close()

	type result struct {
		n              int
		rounds         int
		direct, meshka []sample
		// wall is each round's whole cost, setup and teardown included,
		// for extrapolating the next N's.
		wall []float64
	}
	var results []result
	var skipped []string
	for _, n := range ns {
		id := fmt.Sprintf("P3/P4 N=%d", n)
		rounds := b.roundsFor(id, b.opts.rounds)
		if n == fanoutBigN {
			prev := results[len(results)-1]
			if why := bigNFits(b, prev.n, prev.wall, n); why != "" {
				skipped = append(skipped, why)
				b.progress("P3/P4 %s", why)
				continue
			}
			rounds = b.optionalRoundsFor(id, b.opts.rounds)
		}
		res := result{n: n}
		for r := range rounds {
			res.rounds = r
			roundStart := time.Now()
			for _, side := range []string{"direct", "meshka"} {
				var x sample
				labelled(fmt.Sprintf("P4 N=%d", n), side, func() { x = fanoutOnce(b, up, topic, records, side, n, r, tune) })
				s.samples = append(s.samples, x)
				if x.err != "" {
					b.failed = true
					b.progress("P3/P4 N=%d round %d %s: FAILED: %s", n, r, side, x.err)
					s.notes = append(s.notes, fmt.Sprintf("FAILED: N=%d round %d %s: %s", n, r, side, x.err))
					continue
				}
				b.progress("P3/P4 N=%-4d round %d/%d %-6s %8.1f MB/s delivered in %6.2f s, upstream sent %7.1f MiB",
					n, r, b.opts.rounds, side, x.mbps(), x.elapsed.Seconds(), float64(x.upstream)/(1<<20))
				if side == "direct" {
					res.direct = append(res.direct, x)
				} else {
					res.meshka = append(res.meshka, x)
				}
			}
			res.wall = append(res.wall, time.Since(roundStart).Seconds())
		}
		results = append(results, res)
	}

	// The baseline is what one direct reader costs upstream, measured in
	// this same invocation (the N=1 direct runs).
	var baseline []float64
	for _, r := range results {
		if r.n == 1 {
			baseline = mib(r.direct)
		}
	}
	for _, r := range results {
		s.rows = append(s.rows, row{
			id: fmt.Sprintf("P3 N=%d", r.n), what: fmt.Sprintf("upstream MiB sent: %d reader(s) via meshka vs ONE direct reader", r.n),
			unit: "MiB", direct: baseline, meshka: mib(r.meshka),
			target: "≤ 1.05", check: func(x float64) bool { return x <= 1.05 },
		})
	}
	for _, r := range results {
		rw := row{
			id: fmt.Sprintf("P4 N=%d", r.n), what: fmt.Sprintf("delivered MB/s, %d reader(s) each reading all %d MiB", r.n, preload>>20),
			unit: "MB/s", direct: rates(r.direct), meshka: rates(r.meshka),
		}
		if r.n == 100 {
			rw.target, rw.check = "≥ 1.0", func(x float64) bool { return x >= 1.0 }
		}
		if r.rounds != b.opts.rounds {
			rw.what += fmt.Sprintf(" (%d round(s) only)", r.rounds)
		}
		s.rows = append(s.rows, rw)
	}
	up1 := chart{title: fmt.Sprintf("P3 upstream bytes for N readers of %d MiB (median of rounds)", preload>>20),
		xLabel: "readers N", yLabel: "upstream MiB sent", xLog: true, yLog: true}
	tp := chart{title: fmt.Sprintf("P4 delivered throughput, N readers of %d MiB (median of rounds)", preload>>20),
		xLabel: "readers N", yLabel: "delivered MB/s", xLog: true, yZero: true}
	for _, side := range []string{"direct", "meshka"} {
		bytesS := series{name: side + " (N readers straight to kfake)", color: colDirect}
		rateS := series{name: side, color: colDirect}
		if side == "meshka" {
			bytesS.name, bytesS.color, rateS.color = "meshka (N readers through one node)", colMeshka, colMeshka
		}
		for _, r := range results {
			xs := r.direct
			if side == "meshka" {
				xs = r.meshka
			}
			bytesS.x, bytesS.y = append(bytesS.x, float64(r.n)), append(bytesS.y, median(mib(xs)))
			rateS.x, rateS.y = append(rateS.x, float64(r.n)), append(rateS.y, median(rates(xs)))
		}
		up1.series = append(up1.series, bytesS)
		tp.series = append(tp.series, rateS)
	}
	b.savePlot(&s, "fanout_upstream_bytes.png", "P3 upstream bytes vs number of readers, direct vs meshka", up1)
	b.savePlot(&s, "fanout_throughput.png", "P4 delivered MB/s vs number of readers, direct vs meshka", tp)
	s.notes = append(s.notes,
		fmt.Sprintf("Preload: %d MiB of 1 KiB random values (%d records) in one single-partition topic, produced directly upstream once and read by every run. "+
			"Each reader is its own franz-go client (ConsumePartitions, partition 0 from offset 0, no group, default fetch sizes) and checks every offset arrives once, in order.", preload>>20, records),
		fmt.Sprintf("Each meshka run starts a fresh node, so its cache is cold and its upstream bytes include the one upstream read. "+
			"cache.partition_max_bytes is set to %d MiB (default 64 MiB; twice the preload, at least the default) so the cache holds the whole preload "+
			"and every reader is served from memory, never read through to upstream after an eviction.", int64(cacheBytes)>>20),
		"P3 compares meshka's upstream bytes at each N with the upstream bytes of ONE direct reader (the N=1 direct runs of this same invocation; "+
			"that baseline is the direct column); P4 compares delivered throughput, meshka ÷ direct, at the same N.",
		"Upstream bytes are everything the kfake brokers wrote to any client from the start of the run (before the meshka node starts) until its clients "+
			"and node are closed (metadata and fetch responses), counted at the socket; "+
			"N direct readers cost N times one reader, as the raw table shows.",
		"Delivered MB/s = N × preload ÷ wall time from creating the clients until the last reader has its last record. "+
			"Direct, kfake answers every request on one goroutine, so N direct readers queue behind each other; through meshka the readers are served "+
			"from the cache concurrently, and what remains is the readers' own work (N clients decoding every record) and the proxy writing N copies, "+
			"all on the same 2 cores. At N=1 a run lasts about 0.1 s, so the fresh node's start (the partition actor's activation, the "+
			"stream's first upstream connection, a few ms) weighs in and the figure swings widely between rounds; P4₁ measures one reader "+
			"over a backlog long enough to mean something. N=1 and N=10 have no throughput target.",
	)
	s.notes = append(s.notes, skipped...)
	return s
}

// bigNFits says why n readers cannot run, or "" when they can: one
// round's time is extrapolated linearly from the previous case's whole
// rounds (prevN readers) and must fit the time the budget has spare,
// memory is judged by a generous per-reader bound. Once started, its
// later rounds run while they fit (optionalRoundsFor).
func bigNFits(b *bench, prevN int, prevWall []float64, n int) string {
	if len(prevWall) == 0 {
		return fmt.Sprintf("N=%d skipped: no N=%d round to extrapolate its cost from.", n, prevN)
	}
	perRound := max(time.Duration(float64(n)/float64(prevN)*median(prevWall)*float64(time.Second)), time.Second)
	need := int64(n) * readerMemEstimate
	if avail := meminfo("MemAvailable"); avail > 0 && avail < need {
		return fmt.Sprintf("N=%d skipped: its readers may need about %d MiB, and only %d MiB is available.", n, need>>20, avail>>20)
	}
	if left := b.spare(); perRound > left {
		return fmt.Sprintf("N=%d skipped: one round (direct + meshka) would take about %s by extrapolation from N=%d, and only %s of the run's time budget "+
			"is spare (the rest is kept for what must still run and the report).",
			n, perRound.Round(time.Second), prevN, max(left, 0).Round(time.Second))
	}
	return ""
}

// fanoutOnce runs N readers on one side and measures wall time and the
// upstream bytes sent meanwhile.
func fanoutOnce(b *bench, up *upstream, topic string, records int64, side string, n, round int, tune func(*config.Config)) sample {
	x := sample{case_: fmt.Sprintf("N=%d", n), round: round, side: side}
	before := up.Sent()
	seeds := up.addrs()
	var nodes []*node.Node
	var clients []*kgo.Client
	// teardown closes the clients, then the node, and only then reads the
	// byte counter: a response written just as its reader finished is
	// counted only once its Write returns, and the node's stream requests
	// belong to the run too.
	teardown := func() {
		closeAll(clients)
		stopCluster(b, nodes)
		x.upstream = up.Sent() - before
	}
	if side == "meshka" {
		// One node, or b.meshNodes joined ones with reader i seeded with
		// node i mod their number (C3).
		var err error
		if b.meshNodes > 1 {
			nodes, err = up.startCluster(b.meshNodes, tune)
		} else {
			var nd *node.Node
			if nd, err = up.startNode(tune); err == nil {
				nodes = []*node.Node{nd}
			}
		}
		if err != nil {
			x.err = "start meshka: " + err.Error()
			teardown()
			return x
		}
	}
	// A run that hangs must not take the whole budget: give it what is
	// left, within bounds, and report it as a failure.
	timeout := min(max(b.remaining(), 30*time.Second), 5*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	start := time.Now()
	for i := range n {
		if nodes != nil {
			seeds = []string{nodes[i%len(nodes)].Addr().String()}
		}
		cl, err := kgo.NewClient(clientOpts(seeds, b.opts.debug,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}))...)
		if err != nil {
			x.err = "new client: " + err.Error()
			teardown()
			return x
		}
		clients = append(clients, cl)
	}
	got := make([]readResult, n)
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = readAll(ctx, cl, records)
		}()
	}
	wg.Wait()
	x.elapsed = time.Since(start)
	teardown()

	var failed int
	var first error
	minNext, maxNext := int64(math.MaxInt64), int64(0)
	for _, g := range got {
		x.records += g.next
		x.bytes += g.bytes
		minNext, maxNext = min(minNext, g.next), max(maxNext, g.next)
		if g.err != nil {
			failed++
			if first == nil {
				first = g.err
			}
		}
	}
	if failed > 0 {
		x.err = fmt.Sprintf("%d of %d readers failed after %s (readers reached offsets %d..%d of %d); first: %v",
			failed, n, x.elapsed.Round(time.Millisecond), minNext, maxNext, records, first)
	}
	return x
}

type readResult struct {
	next  int64 // offset of the next record expected; records consumed
	bytes int64
	err   error
}

// readAll consumes until it has every record, checking each offset comes
// exactly once and in order, so a proxy that loses or repeats records
// fails the run instead of flattering it.
func readAll(ctx context.Context, cl *kgo.Client, records int64) readResult {
	var r readResult
	for r.next < records {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			r.err = fmt.Errorf("stopped at offset %d of %d: %w", r.next, records, err)
			return r
		}
		fs.EachError(func(t string, p int32, err error) {
			if r.err == nil {
				r.err = fmt.Errorf("fetch %s/%d at offset %d: %w", t, p, r.next, err)
			}
		})
		fs.EachRecord(func(rec *kgo.Record) {
			if r.err == nil && rec.Offset != r.next {
				r.err = fmt.Errorf("got offset %d, expected %d", rec.Offset, r.next)
			}
			r.next++
			r.bytes += int64(len(rec.Value))
		})
		if r.err != nil {
			return r
		}
	}
	if r.next != records {
		r.err = fmt.Errorf("consumed %d records, expected %d", r.next, records)
	}
	return r
}

// closeAll closes clients concurrently: closing a thousand one by one
// would add seconds after every large run.
func closeAll(clients []*kgo.Client) {
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); cl.Close() }()
	}
	wg.Wait()
}

// preloadTopic creates the single-partition topic and writes records
// values into it straight to upstream, checking that the last acknowledged
// offset is records-1 so readers know exactly what to expect.
// cacheHolding sizes a node's partition cache (and its node budget, if
// smaller) to hold bytes.
func cacheHolding(bytes config.Size) func(*config.Config) {
	return func(c *config.Config) {
		c.Cache.PartitionMaxBytes = bytes
		c.Cache.NodeMaxBytes = max(c.Cache.NodeMaxBytes, bytes)
	}
}

// preloadedUpstream starts an upstream and fills a fresh single-partition
// topic named prefix-<time> with records values. The caller closes it.
func preloadedUpstream(b *bench, id, prefix string, records int64) (*upstream, string, error) {
	up, err := startUpstream(b.opts.debug)
	if err != nil {
		return nil, "", fmt.Errorf("start upstream: %w", err)
	}
	topic := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	b.progress("%s preloading %d MiB (%d records) into %s", id, records*valueSize>>20, records, topic)
	if err := preloadTopic(up, topic, records, b.opts.debug); err != nil {
		up.close()
		return nil, "", fmt.Errorf("preload: %w", err)
	}
	return up, topic, nil
}

func preloadTopic(up *upstream, topic string, records int64, debug bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := up.createTopic(ctx, topic, 1); err != nil {
		return err
	}
	cl, err := kgo.NewClient(clientOpts(up.addrs(), debug, kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	pl := newPayload()
	var mu sync.Mutex
	var firstErr error
	last := int64(-1)
	for i := range records {
		cl.Produce(ctx, &kgo.Record{Value: pl.value(i)}, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			last = max(last, r.Offset)
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return firstErr
	}
	if last != records-1 {
		return fmt.Errorf("last offset %d after producing %d records", last, records)
	}
	return nil
}

func mib(xs []sample) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x.upstream) / (1 << 20)
	}
	return out
}

func rates(xs []sample) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = x.mbps()
	}
	return out
}

func seconds(xs []sample) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = x.elapsed.Seconds()
	}
	return out
}
