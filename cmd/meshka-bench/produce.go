package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	produceDuration      = 5 * time.Second
	produceDurationQuick = 2 * time.Second
	producePartitions    = 6
)

// runProduce is P1: one franz-go producer writing 1 KiB random values as
// fast as it can for a fixed time, direct and through meshka.
func runProduce(b *bench) section {
	s, direct := produceRuns(b, "P1")
	b.p1Direct = direct
	s.rows[0].target, s.rows[0].check = "≥ 0.90", func(x float64) bool { return x >= 0.90 }
	return s
}

// produceRuns runs P1's rounds (or C1's, through b.meshNodes nodes) and
// returns the section with its one row and the direct median.
func produceRuns(b *bench, id string) (section, float64) {
	s := section{}
	dur := produceDuration
	if b.opts.quick {
		dur = produceDurationQuick
	}
	up, err := b.via.startUpstream(b.opts.debug)
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED to start the upstream: "+err.Error())
		return s, 0
	}
	defer up.close()
	pl := newPayload()

	// The process's first produce run starts with a small heap and cold
	// connections and came out several times slower than later runs; one
	// unrecorded run of each side keeps that off round 1.
	warm := dur / 2
	b.progress("%s warm-up (%s per side, not recorded)", id, warm)
	for _, side := range []string{"direct", "meshka"} {
		collectGarbage()
		if x := produceOnce(b, up, pl, id, side, 0, warm); x.err != "" {
			b.progress("%s warm-up %s: %s", id, side, x.err)
		}
	}
	var direct, meshka []float64
	rounds := b.opts.produceRounds()
	for r := range b.roundsFor(id, rounds) {
		for _, side := range []string{"direct", "meshka"} {
			collectGarbage()
			x := produceOnce(b, up, pl, id, side, r, dur)
			s.samples = append(s.samples, x)
			if x.err != "" {
				b.failed = true
				b.progress("%s round %d %s: FAILED: %s", id, r, side, x.err)
				s.notes = append(s.notes, fmt.Sprintf("FAILED: %s round %d %s: %s", id, r, side, x.err))
				continue
			}
			b.progress("%s round %d/%d %-6s %7.1f MB/s (%d records acked in %s)", id, r, rounds, side, x.mbps(), x.records, dur)
			if side == "direct" {
				direct = append(direct, x.mbps())
			} else {
				meshka = append(meshka, x.mbps())
			}
		}
	}
	s.rows = []row{{
		id: id, what: fmt.Sprintf("produce 1 KiB random values, 1 producer, %d partitions, %s per run", producePartitions, dur),
		unit: "MB/s", direct: direct, meshka: meshka,
	}}
	if id != "P1" {
		s.notes = append(s.notes, pairedRatios(s.samples))
		return s, median(direct)
	}
	s.notes = append(s.notes,
		"Producer: franz-go defaults (idempotent, acks=all, snappy preferred, which random values defeat; at most 50,000 buffered records, "+
			"so Produce blocks rather than queueing without bound) except linger 0. MB/s counts values acknowledged within the run's window; "+
			"records still in flight at the end are not counted.",
		"A fresh 6-partition topic per run (segment.bytes 8 MiB, see below), deleted afterwards (kfake keeps data in memory); a fresh meshka "+
			"node per meshka run; one unrecorded half-length run of each side first, as the process's first run is slow. Before every run "+
			"the harness runs the garbage collector and returns freed memory to the OS: a 5 s run leaves gigabytes in kfake, and without "+
			"this the next run (at first always a meshka run) paid for them, with upstream produce calls of 30-170 ms instead of about 0.2 ms.",
		"kfake stores each segment in one in-memory file grown by appending; with its 100 MiB default segments every growth step copies up "+
			"to 100 MiB on kfake's only goroutine and stalls every client. Produce topics use 8 MiB segments on both sides so those stalls "+
			"are shorter and fewer.",
		"What limits it: client, kfake and meshka share 2 cores, and kfake handles every request on one goroutine. A CPU profile of a "+
			"2-round P1 run (meshka-bench -only P1 -rounds 2 -cpuprofile) put 11% of the whole run's CPU, about a fifth of the meshka runs', "+
			"in meshka's goroutines, most of it in the kernel: 85% of the read loop is the copy of the producer's requests out of the socket, "+
			"and the upstream writer's time is writev; kfake took 42%, mostly copying into its in-memory segments. Through meshka every "+
			"batch crosses loopback twice more (two more kernel copies per byte, in the same 2 cores). meshka keeps up to 5 batches of each "+
			"partition in flight upstream on one ordered connection per kfake broker and merges the partitions waiting together into one "+
			"request, as the producer does directly; but it presents itself as the single leader of all 6 partitions, so the producer's "+
			"per-broker machinery (one goroutine that encodes and compresses its requests, at most 5 requests in flight when idempotent) "+
			"serves all 6 partitions rather than running once per kfake broker. A meshka cluster spreads leadership over its nodes.",
		pairedRatios(s.samples),
	)
	return s, median(direct)
}

// collectGarbage frees what the previous run left before the next one
// starts. kfake keeps every produced byte in memory, so a 5 s run leaves
// gigabytes behind when its topic is deleted; without this the next run,
// whichever side it is, pays for collecting and re-faulting them (its
// upstream produce calls took 30-170 ms instead of a few).
func collectGarbage() {
	runtime.GC()
	debug.FreeOSMemory()
}

// produceOnce runs one side of one P1 (or C1) round.
func produceOnce(b *bench, up *upstream, pl *payload, id, side string, round int, dur time.Duration) sample {
	x := sample{round: round, side: side}
	// Deleting after the node and client are gone keeps the delete out of
	// the byte count and frees the topic's memory for the next run.
	topic, drop, err := produceTopic(b, up, id, round, side)
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer drop()

	before := up.Sent()
	seeds, stop, err := sideSeeds(b, up, side, b.via.nodeTune())
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer stop()
	cl, err := kgo.NewClient(clientOpts(seeds, b.opts.debug, append([]kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0)}, b.via.clientOpts()...)...)...)
	if err != nil {
		x.err = err.Error()
		return x
	}

	x.elapsed, x.records, x.bytes, x.err = produceFor(cl, dur, pl.value, func() { x.upstream = up.Sent() - before })
	cl.Close()
	return x
}

// produceFor has cl produce value(0), value(1), … for dur, as fast as
// acknowledgements free room (Produce blocks once the client buffers its
// maximum of records), and counts what was acknowledged; atEnd, when not
// nil, runs as the window closes, before the client is drained. errText
// names the records that failed other than for the run's end.
func produceFor(cl *kgo.Client, dur time.Duration, value func(int64) []byte, atEnd func()) (elapsed time.Duration, records, bytes int64, errText string) {
	var (
		acked, ackedBytes atomic.Int64
		errMu             sync.Mutex
		firstErr          error
		errCount          int64
	)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	promise := func(r *kgo.Record, err error) {
		if err == nil {
			acked.Add(1)
			ackedBytes.Add(int64(len(r.Value)))
			return
		}
		// Records failed because the run ended are expected; anything
		// else is a real produce error worth reporting.
		if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed)) {
			return
		}
		errMu.Lock()
		errCount++
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		for i := int64(0); ctx.Err() == nil; i++ {
			cl.Produce(ctx, &kgo.Record{Value: value(i)}, promise)
		}
	}()
	timer := time.NewTimer(dur)
	<-timer.C
	elapsed = time.Since(start)
	records, bytes = acked.Load(), ackedBytes.Load()
	if atEnd != nil {
		atEnd()
	}
	stop()
	<-done
	// Let in-flight requests finish so the node shuts down idle; whatever
	// is still buffered fails with the canceled context or at Close.
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), 10*time.Second)
	_ = cl.Flush(flushCtx)
	cancelFlush()
	errMu.Lock()
	defer errMu.Unlock()
	if firstErr != nil {
		errText = fmt.Sprintf("%d records failed; first error: %v", errCount, firstErr)
	}
	return elapsed, records, bytes, errText
}

// pairedRatios notes each round's own ratio, the meshka run over the
// direct run just before it, so a reader sees how far the machine's drift
// moves the figure between rounds.
func pairedRatios(samples []sample) string {
	direct := map[int]float64{}
	var out []string
	for _, x := range samples {
		if x.err != "" || x.round == 0 {
			continue
		}
		if x.side == "direct" {
			direct[x.round] = x.mbps()
		} else if d := direct[x.round]; d > 0 {
			out = append(out, fmt.Sprintf("%.3f", x.mbps()/d))
		}
	}
	return "Each round's own ratio (meshka run ÷ the direct run just before it): " + strings.Join(out, ", ") +
		". The spread is the machine's drift between runs of a few seconds; the result is the ratio of the two sides' medians."
}

// produceTopic creates the fresh topic of producePartitions partitions
// one P1 or P2 run produces to, and returns the function that deletes it.
func produceTopic(b *bench, up *upstream, id string, round int, side string) (string, func(), error) {
	return freshTopic(b, up, id, round, side, producePartitions)
}

// freshTopic creates a fresh topic of partitions partitions for one run,
// with produceTopicConfigs, and returns the function that deletes it.
func freshTopic(b *bench, up *upstream, id string, round int, side string, partitions int32) (string, func(), error) {
	topic := fmt.Sprintf("bench-%s-r%d-%s-%d", strings.ToLower(id), round, side, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := up.createTopic(ctx, topic, partitions, produceTopicConfigs...); err != nil {
		return "", nil, err
	}
	return topic, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := up.deleteTopic(ctx, topic); err != nil {
			b.progress("%s: %v (ignored)", id, err)
		}
	}, nil
}
