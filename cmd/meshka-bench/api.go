package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/mesh"
	"github.com/meshka/meshka/node"
)

const (
	// a1Subscribers subscribe to one partition with a1Filters distinct
	// header filters; a1Records records are produced to it.
	a1Subscribers = 1000
	a1Filters     = 100
	a1Records     = 100_000
	// a2Records 1 KiB records are preloaded into one partition for A2.
	a2Records = 32 << 10
)

// runAPI is A1-A3: the records API (package mesh) that bindings use.
func runAPI(b *bench) section {
	s := section{}
	for _, part := range []func(*bench) section{runA1, runA2, runA3} {
		p := part(b)
		s.rows = append(s.rows, p.rows...)
		s.samples = append(s.samples, p.samples...)
		s.notes = append(s.notes, p.notes...)
	}
	return s
}

// runA1 is A1: a thousand subscribers of one partition on one node, each
// with one of a hundred header filters, while records are produced to it
// straight upstream as fast as franz-go can.
func runA1(b *bench) section {
	s := section{}
	up, err := startUpstream(b.opts.debug)
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "A1 FAILED: "+err.Error())
		return s
	}
	defer up.close()
	var rates, allocs []float64
	for r := range b.roundsFor("A1", b.opts.rounds) {
		collectGarbage()
		_, base, err := a1Once(b, up, r, 0)
		if err != nil {
			b.failed = true
			s.notes = append(s.notes, fmt.Sprintf("FAILED: A1 round %d without subscribers: %s", r, err))
			continue
		}
		collectGarbage()
		x, mallocs, err := a1Once(b, up, r, a1Subscribers)
		perRecord := float64(int64(mallocs)-int64(base)) / float64(x.records)
		x.round, x.side, x.case_ = r, "meshka", "A1"
		if err != nil {
			x.err = err.Error()
			b.failed = true
			s.notes = append(s.notes, fmt.Sprintf("FAILED: A1 round %d: %s", r, err))
		}
		s.samples = append(s.samples, x)
		if err != nil {
			continue
		}
		rate := float64(x.records) / x.elapsed.Seconds()
		b.progress("A1 round %d/%d %9.0f records delivered/s, %.3f allocations per delivered record", r, b.opts.rounds, rate, perRecord)
		rates = append(rates, rate)
		allocs = append(allocs, perRecord)
	}
	s.rows = []row{{
		id:   "A1",
		what: fmt.Sprintf("%d subscribers of one partition on one node, %d distinct header filters, %d records of 100 bytes produced straight upstream: records delivered per second", a1Subscribers, a1Filters, a1Records),
		unit: "rec/s", meshka: rates, target: "recorded",
		result: func(_, m float64) (float64, string) { return m, fmt.Sprintf("%.0f rec/s", m) },
	}, {
		id:   "A1 allocs",
		what: "allocations per delivered record: the process's allocations in the same runs less those of the same produce with no subscriber",
		unit: "allocs", meshka: allocs, target: "≤ 1", check: func(x float64) bool { return x <= 1 },
		result: func(_, m float64) (float64, string) { return m, fmt.Sprintf("%.3f", m) },
	}}
	s.notes = append(s.notes, fmt.Sprintf("A1: the %d subscriptions (Queue 1024, Pause) start at the partition's end before anything is produced, "+
		"so all share the node's one reader of the partition; a franz-go producer writes %d records straight to upstream, each with a header "+
		"naming one of %d filters, and each subscriber's goroutine takes its %d records with Next; the time runs from the first produce until "+
		"every subscriber has all its records, so the rate is bounded by the producer too. Allocations are runtime.MemStats.Mallocs over the "+
		"span, every goroutine of the process counted, less the count of a run just before with the same node, producer and records and "+
		"no subscriber (franz-go's producer and kfake allocate per record): what the subscriptions and their shared reader add.",
		a1Subscribers, a1Records, a1Filters, a1Records/a1Filters))
	return s
}

// a1Once produces a1Records to a fresh partition with subscribers
// subscribed and reports the deliveries, their time and the allocations
// from the first produce until every subscriber has its records (with
// none, until every record is acknowledged).
func a1Once(b *bench, up *upstream, round, subscribers int) (sample, uint64, error) {
	var x sample
	topic, drop, err := freshTopic(b, up, "A1", round, fmt.Sprintf("s%d", subscribers), 1)
	if err != nil {
		return x, 0, err
	}
	defer drop()
	n, err := up.startNode(nil)
	if err != nil {
		return x, 0, err
	}
	defer stopNode(b, n)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := n.Mesh()
	subs := make([]*mesh.Subscription, subscribers)
	for i := range subs {
		f := mesh.Filter{Headers: [][]mesh.HeaderMatch{{{Name: "f", Value: []byte(strconv.Itoa(i % a1Filters))}}}}
		if subs[i], err = m.Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.Latest(), Filter: f}); err != nil {
			return x, 0, err
		}
		defer subs[i].Close()
	}
	cl, err := kgo.NewClient(clientOpts(up.addrs(), b.opts.debug, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))...)
	if err != nil {
		return x, 0, err
	}
	defer cl.Close()
	value := make([]byte, 100)
	filters := make([][]byte, a1Filters)
	for i := range filters {
		filters[i] = []byte(strconv.Itoa(i))
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, subscribers)
	for i, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a1Take(ctx, s, []byte(strconv.Itoa(i%a1Filters))); err != nil {
				errs <- fmt.Errorf("subscriber %d: %w", i, err)
			}
		}()
	}
	for i := range a1Records {
		cl.Produce(ctx, &kgo.Record{Value: value, Headers: []kgo.RecordHeader{{Key: "f", Value: filters[i%a1Filters]}}}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		return x, 0, err
	}
	wg.Wait()
	x.elapsed = time.Since(start)
	runtime.ReadMemStats(&ms1)
	close(errs)
	if err := <-errs; err != nil {
		return x, 0, err
	}
	x.records = int64(a1Records / a1Filters * subscribers)
	x.bytes = x.records * 100
	return x, ms1.Mallocs - ms0.Mallocs, nil
}

// a1Take takes one subscriber's records, checking each is its filter's;
// it allocates nothing per record.
func a1Take(ctx context.Context, s *mesh.Subscription, filter []byte) error {
	for i := range a1Records / a1Filters {
		r, err := s.Next(ctx)
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if f, _ := r.HeaderValue("f"); !bytes.Equal(f, filter) {
			return fmt.Errorf("record %d is of filter %s", i, f)
		}
	}
	return nil
}

// runA2 is A2: one subscriber of a preloaded partition on the node that
// owns it and on another node, through the mesh.
func runA2(b *bench) section {
	s := section{}
	topic, nodes, owner, done, err := twoNodesOnePartition(b, "A2", a2Records)
	defer done()
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "A2 FAILED: "+err.Error())
		return s
	}
	// The first read fills the owner's cache from upstream.
	if _, err := a2Once(nodes[owner], topic); err != nil {
		b.failed = true
		s.notes = append(s.notes, "A2 FAILED: filling the cache: "+err.Error())
		return s
	}
	var onOwner, onOther []float64
	for r := range b.roundsFor("A2", b.opts.rounds) {
		for _, side := range []string{"direct", "meshka"} {
			collectGarbage()
			n := nodes[owner]
			if side == "meshka" {
				n = nodes[1-owner]
			}
			x, err := a2Once(n, topic)
			x.round, x.side, x.case_ = r, side, "A2"
			if err != nil {
				x.err = err.Error()
				b.failed = true
				s.notes = append(s.notes, fmt.Sprintf("FAILED: A2 round %d %s: %s", r, side, err))
			}
			s.samples = append(s.samples, x)
			if err != nil {
				continue
			}
			rate := float64(x.records) / x.elapsed.Seconds()
			b.progress("A2 round %d/%d %-6s %9.0f records/s", r, b.opts.rounds, map[string]string{"direct": "owner", "meshka": "other"}[side], rate)
			if side == "direct" {
				onOwner = append(onOwner, rate)
			} else {
				onOther = append(onOther, rate)
			}
		}
	}
	s.rows = []row{{
		id:   "A2",
		what: fmt.Sprintf("records/s of one subscriber reading a partition (%d records of 1 KiB, in the owner's cache) from its start, on a node that does not own it vs on the owner", a2Records),
		unit: "rec/s", direct: onOwner, meshka: onOther,
		target: "≥ 0.8", check: func(x float64) bool { return x >= 0.8 },
	}}
	s.notes = append(s.notes, "A2: two nodes in this process with remoting on; a fresh subscription per run (Earliest, no filter), whose node's shared reader "+
		"reads the partition from the owner's cache and decodes every batch once; the \"direct\" column is the subscriber on the owner. "+
		"On the other node every read crosses as protobuf over loopback gRPC, copied at each encoding and decoding (C4 measures that path alone).")
	return s
}

func a2Once(n *node.Node, topic string) (sample, error) {
	var x sample
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	s, err := n.Mesh().Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Partitions: []int32{0}, Start: mesh.Earliest()})
	if err != nil {
		return x, err
	}
	defer s.Close()
	for i := int64(0); i < a2Records; i++ {
		r, err := s.Next(ctx)
		if err != nil {
			return x, err
		}
		if r.Offset != i {
			return x, fmt.Errorf("record %d at offset %d", i, r.Offset)
		}
		x.bytes += int64(len(r.Value))
	}
	x.elapsed, x.records = time.Since(start), a2Records
	return x, nil
}

// runA3 is A3: 1 KiB records produced through the API's Producer (acks
// all) on an in-process node vs a franz-go producer straight to upstream.
func runA3(b *bench) section {
	s := section{}
	dur := produceDuration
	if b.opts.quick {
		dur = produceDurationQuick
	}
	up, err := startUpstream(b.opts.debug)
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "A3 FAILED: "+err.Error())
		return s
	}
	defer up.close()
	pl := newPayload()
	once := func(side string, r int) sample {
		collectGarbage()
		var x sample
		if side == "direct" {
			x = produceOnce(b, up, pl, "A3", "direct", r, dur)
		} else {
			x = apiProduceOnce(b, up, pl, r, dur)
		}
		x.case_ = "A3"
		return x
	}
	// One unrecorded round first warms both sides up.
	for _, side := range []string{"direct", "meshka"} {
		once(side, 0)
	}
	var direct, api []float64
	for r := range b.roundsFor("A3", b.opts.rounds) {
		for _, side := range []string{"direct", "meshka"} {
			x := once(side, r)
			s.samples = append(s.samples, x)
			if x.err != "" {
				b.failed = true
				s.notes = append(s.notes, fmt.Sprintf("FAILED: A3 round %d %s: %s", r, side, x.err))
				continue
			}
			b.progress("A3 round %d/%d %-6s %7.1f MB/s", r, b.opts.rounds, side, x.mbps())
			if side == "direct" {
				direct = append(direct, x.mbps())
			} else {
				api = append(api, x.mbps())
			}
		}
	}
	s.rows = []row{{
		id:   "A3",
		what: fmt.Sprintf("MB/s acknowledged: 1 KiB records produced through the API's Producer (acks all, no compression, linger 0) to %d partitions vs a franz-go producer straight to upstream (P1's)", producePartitions),
		unit: "MB/s", direct: direct, meshka: api,
		target: "≥ 0.9", check: func(x float64) bool { return x >= 0.9 },
	}}
	s.notes = append(s.notes, "A3: the API side is one goroutine calling Producer.Produce (records spread over the partitions in turn) on a node in this "+
		"process, as a binding would, for the same time as P1's direct producer; each partition has one batch on its way at a time, "+
		"and what comes meanwhile goes in the next (up to 1 MiB).")
	return s
}

func apiProduceOnce(b *bench, up *upstream, pl *payload, round int, dur time.Duration) sample {
	x := sample{round: round, side: "meshka"}
	topic, drop, err := produceTopic(b, up, "A3", round, "meshka")
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer drop()
	n, err := up.startNode(nil)
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer stopNode(b, n)
	p := n.Mesh().NewProducer(mesh.ProducerOptions{})
	var acked, ackedBytes atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	ctx, stop := context.WithCancel(context.Background())
	done := func(r mesh.Record, err error) {
		if err == nil {
			acked.Add(1)
			ackedBytes.Add(int64(len(r.Value)))
			return
		}
		errMu.Lock()
		if firstErr == nil && ctx.Err() == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	start := time.Now()
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := int64(0); ctx.Err() == nil; i++ {
			if err := p.Produce(ctx, mesh.Record{Topic: topic, Partition: int32(i % producePartitions), Value: pl.value(i)}, done); err != nil {
				if !errors.Is(err, context.Canceled) {
					done(mesh.Record{}, err)
				}
				return
			}
		}
	}()
	time.Sleep(dur)
	x.elapsed = time.Since(start)
	x.records, x.bytes = acked.Load(), ackedBytes.Load()
	stop()
	<-finished
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	p.Close(cctx)
	cancel()
	errMu.Lock()
	defer errMu.Unlock()
	if firstErr != nil {
		x.err = firstErr.Error()
	}
	return x
}
