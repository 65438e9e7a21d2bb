package main

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	h1Clients = 10000
	h1Quick   = 1000
	h1Records = 100
	// The wrapped case: fewer clients, each receiving more records than
	// its subscription's queue holds (32), so every slot of the queue's
	// ring has been written once, as on a stream that has run a while.
	h1WrapClients      = 1000
	h1WrapClientsQuick = 200
	h1WrapRecords      = 1100
	h1Value            = 1024
	h1Step             = 100 // records produced before waiting for every reader to have them
	h1Topic            = "bench-h1"
)

// h1Case is one H1 case: how many clients, how many records.
type h1Case struct {
	name             string
	clients, records int
}

// runHTTPStream is H1: h1Clients Server-Sent Events clients of one topic
// on one meshka node, run in a child process so its memory is the node's
// alone: the RSS each client costs it, and the bytes upstream sends it
// while the records flow to every client, against one Kafka reader of
// the same records straight from upstream, counted as M4 counts them.
func runHTTPStream(b *bench) section {
	s := section{heads: [2]string{"one Kafka reader median", "meshka median"}}
	cases := []h1Case{{"H1", h1Clients, h1Records}, {"H1 wrapped", h1WrapClients, h1WrapRecords}}
	if b.opts.quick {
		cases = []h1Case{{"H1", h1Quick, h1Records}, {"H1 wrapped", h1WrapClientsQuick, h1WrapRecords}}
	}
	// The clients' ends are in this process and the node's in the child,
	// which inherits the limit.
	if err := raiseFileLimit(cases[0].clients + 1000); err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+err.Error())
		return s
	}
	per := map[string][]float64{}
	for r := range b.roundsFor("H1", b.opts.rounds) {
		for _, c := range cases {
			for _, side := range []string{"direct", "meshka"} {
				collectGarbage()
				var x sample
				labelled(c.name, side, func() { x = h1Once(b, c, side, r) })
				s.samples = append(s.samples, x)
				if x.err != "" {
					b.failed = true
					b.progress("%s round %d %s: FAILED: %s", c.name, r, side, x.err)
					s.notes = append(s.notes, fmt.Sprintf("FAILED: %s round %d %s: %s", c.name, r, side, x.err))
					continue
				}
				if side == "meshka" {
					b.progress("%s round %d/%d %-6s %6.2f KiB RSS per client; upstream %.3f MiB while the records flowed, %.3f MiB in all (%d clients connected in %.1f s, %d events delivered in %.2f s)",
						c.name, r, b.opts.rounds, side, x.extra["rss"], float64(x.upstream)/(1<<20), x.extra["total"]/(1<<20), c.clients, x.extra["connect"], x.records, x.elapsed.Seconds())
					per[c.name+" rss"] = append(per[c.name+" rss"], x.extra["rss"])
					per[c.name+" delivery"] = append(per[c.name+" delivery"], x.elapsed.Seconds())
				} else {
					b.progress("%s round %d/%d %-6s upstream %.3f MiB while the records flowed, %.3f MiB in all", c.name, r, b.opts.rounds, side,
						float64(x.upstream)/(1<<20), x.extra["total"]/(1<<20))
				}
				per[c.name+" "+side] = append(per[c.name+" "+side], float64(x.upstream)/(1<<20))
				per[c.name+" "+side+" total"] = append(per[c.name+" "+side+" total"], x.extra["total"]/(1<<20))
			}
		}
	}
	quick := ""
	if b.opts.quick {
		quick = fmt.Sprintf(" (-quick; %d without it)", h1Clients)
	}
	main, wrap := cases[0], cases[1]
	s.rows = []row{{
		id: "H1 RSS", what: fmt.Sprintf("RSS of the meshka node's process per SSE client: %d clients%s of one topic's stream, each having received %d records of %d bytes", main.clients, quick, main.records, h1Value),
		unit: "KiB", meshka: per["H1 rss"], result: absolute("KiB"), target: "≤ 24 KiB", check: func(x float64) bool { return x <= 24 },
	}, {
		id: "H1 RSS wrapped", what: fmt.Sprintf("the same with %d clients, each having received %d records: more than its stream's queue holds (32), so the whole queue has been written, as on a stream that has run a while", wrap.clients, wrap.records),
		unit: "KiB", meshka: per["H1 wrapped rss"], result: absolute("KiB"), target: "≤ 24 KiB", check: func(x float64) bool { return x <= 24 },
	}, {
		id: "H1 upstream", what: fmt.Sprintf("upstream MiB sent while %d records of %d bytes flow: to one meshka node streaming them to %d SSE clients vs to ONE Kafka reader", main.records, h1Value, main.clients),
		unit: "MiB", direct: per["H1 direct"], meshka: per["H1 meshka"], target: "≤ 1.05", check: func(x float64) bool { return x <= 1.05 },
	}, {
		id: "H1 upstream all", what: "the same runs' upstream MiB from before the node (or reader) started until it stopped: connecting, subscribing and the warm-up too",
		unit: "MiB", direct: per["H1 direct total"], meshka: per["H1 meshka total"],
	}, {
		id: "H1 upstream wrapped", what: fmt.Sprintf("upstream MiB sent while %d records flow to %d SSE clients vs to ONE Kafka reader (the wrapped case's runs)", wrap.records, wrap.clients),
		unit: "MiB", direct: per["H1 wrapped direct"], meshka: per["H1 wrapped meshka"],
	}}
	s.rawHead = []string{"clients", "RSS KiB/client", "heap KiB/client", "stacks KiB/client", "goroutines/client", "connect s", "upstream MiB (records)", "upstream MiB (all)", "events", "delivery s"}
	s.raw = func(x sample) []string {
		up := []string{fmt.Sprintf("%.3f", float64(x.upstream)/(1<<20)), fmt.Sprintf("%.3f", x.extra["total"]/(1<<20)),
			fmt.Sprint(x.records), fmt.Sprintf("%.2f", x.elapsed.Seconds())}
		if x.side != "meshka" {
			return append([]string{"1 Kafka reader", "—", "—", "—", "—", "—"}, up...)
		}
		return append([]string{fmt.Sprint(int64(x.extra["clients"])), fmt.Sprintf("%.2f", x.extra["rss"]), fmt.Sprintf("%.2f", x.extra["heap"]),
			fmt.Sprintf("%.2f", x.extra["stack"]), fmt.Sprintf("%.2f", x.extra["goroutines"]), fmt.Sprintf("%.1f", x.extra["connect"])}, up...)
	}
	s.notes = append(s.notes,
		fmt.Sprintf("Method: per run a fresh kfake upstream with a one-partition topic. meshka: a fresh node in a child process of the "+
			"harness (the node child of R1, with an HTTP listener and a stream route on the topic), one SSE client that stays connected "+
			"until a warm-up record has reached it (so the partition's reader and the node's first allocations are in the baseline), the "+
			"child's memory, then %d more clients opened from this process, %d at once: each a raw HTTP/1.1 GET of the stream on a "+
			"connection of its own, reading the chunked body (sseclient.go). Warm-up records every 20 ms until every client has one, "+
			"then a franz-go producer (uncompressed) writes %d records of %d random letters straight to upstream, and every client must "+
			"receive all of them; then the child's memory again. Memory is the child's VmRSS after three runtime.GC calls, "+
			"debug.FreeOSMemory and a 300 ms settle, as in P6; the RSS figure is the difference ÷ %d. Direct: one franz-go consumer of "+
			"the partition from offset 0, the same warm-up and records. The wrapped case is the same with %d clients and %d records.",
			main.clients, dialWorkers, main.records, h1Value, main.clients, wrap.clients, wrap.records),
		"Upstream bytes are everything the kfake brokers wrote to any client, counted at the socket as in P3: H1 upstream from just "+
			"before the first record is produced until every reader has the last one (the records, the producer's produce responses on "+
			"both sides, and whatever else the node or reader asked meanwhile); H1 upstream all from before the node or reader starts "+
			"until it and the producer are closed.",
		"What the RSS per client is made of (the raw table's heap and stack columns are the child's runtime.MemStats deltas, "+
			"HeapInuse and StackInuse, per client; kernel socket buffers are not process memory and are not counted): since "+
			"2026-12-02 an HTTP/1.1 stream takes its connection over once it has answered (mappers/http/stream.go, takeOver): "+
			"net/http's connection goroutine, its background read, its 4 KiB read and write buffers and its chunking buffer go, "+
			"and a stream holds one goroutine of its own (about 4 KiB of stack: the raw table's 1.00 goroutines and 4 KiB per "+
			"client), its 512-byte event buffer, the connection, and its mesh subscription, whose queue of 32 records (mesh.Subscribe "+
			"makes its channel whole: 32 × the 128-byte mesh.Record, 4 KiB) is resident once a stream has had 32 records; smaller "+
			"costs are the 15 s heartbeat's timer per wait and the subscription's positions. Before, the same streams took 41.7 KiB "+
			"(BENCHMARKS.md at c6c8e62: two goroutines, about 20 KiB of stacks, and net/http's buffers). A stream that has run a while "+
			"(H1 RSS wrapped) has also been paced (mesh.Pause) at some point, reading alone from the partition's cache through the "+
			"mesh; those reads register a reply each in protoactor's process registry, 1,024 buckets of 32 Go maps each, which once "+
			"touched keep what they grew to, about 8.5 MiB for the process (a heap profile of 1,000 wrapped streams in a test: "+
			"concurrent-map SetIfAbsent), which the "+
			"wrapped case's 1,000 clients divide into about 8.7 KiB each; at 10,000 clients it would be under 1 KiB each.",
		fmt.Sprintf("What H1 upstream is made of: the records cost the node what they cost the one reader. The node's side differed "+
			"from the reader's by %+.1f KiB over %d records delivered in %.1f s, and by %+.1f KiB over %d records delivered in %.1f s "+
			"(H1 upstream wrapped): in step with how long the node's window lasted, not with the records (the reader's window is a few "+
			"ms). Idle, a node and its streams had 3,450 bytes from upstream in 10 s in a trial run, the one reader 21-42. What H1 upstream all adds comes before the records and grows with "+
			"the clients, %.0f bytes per client here: each client's subscription resolves its start (the partition's end) with a "+
			"ListOffsets request of its own (mesh/subscribe.go, offsetAt; as M4 found for MQTT subscriptions).",
			1024*(median(per["H1 meshka"])-median(per["H1 direct"])), main.records, median(per["H1 delivery"]),
			1024*(median(per["H1 wrapped meshka"])-median(per["H1 wrapped direct"])), wrap.records, median(per["H1 wrapped delivery"]),
			(1<<20)*((median(per["H1 meshka total"])-median(per["H1 meshka"]))-(median(per["H1 direct total"])-median(per["H1 direct"])))/float64(main.clients+1)),
		"Delivery (the raw table's delivery s: from the first record produced until every client has all of them) is not a figure "+
			"of this measurement: every event is written and flushed on its own, a write on each of 10,000 connections per record, "+
			"read by 10,000 clients in this process, on the same 2 cores.",
	)
	return s
}

// h1Once runs one side of one H1 round on a fresh upstream.
func h1Once(b *bench, c h1Case, side string, round int) sample {
	x := sample{case_: c.name, round: round, side: side, extra: map[string]float64{}}
	n := c.clients
	up, err := startUpstream(b.opts.debug)
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer up.close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := up.createTopic(ctx, h1Topic, 1); err != nil {
		x.err = err.Error()
		return x
	}
	before := up.Sent()

	// readers counts what each reader got: warm-up records ('W') and
	// measured ones ('B').
	type reader struct {
		warm atomic.Bool
		got  atomic.Int64
	}
	count := func(rd *reader) func([]byte) {
		return func(v []byte) {
			switch {
			case len(v) == 0:
			case v[0] == 'W':
				rd.warm.Store(true)
			case v[0] == 'B':
				rd.got.Add(1)
			}
		}
	}
	var readers []*reader
	var stop func() error
	var ended func() int // streams ended before their time
	var child *nodeChild
	var mem0 childMemory
	prod, err := kgo.NewClient(clientOpts(up.addrs(), b.opts.debug, kgo.DefaultProduceTopic(h1Topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()))...)
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer prod.Close()
	produce := func(v []byte) error { return prod.ProduceSync(ctx, &kgo.Record{Value: v}).FirstErr() }
	// warmAll writes warm-up records until every reader has one.
	warmAll := func() error {
		deadline := time.Now().Add(60 * time.Second)
		for {
			warm := 0
			for _, rd := range readers {
				if rd.warm.Load() {
					warm++
				}
			}
			if warm == len(readers) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%d of %d readers had a warm-up record after 60 s", warm, len(readers))
			}
			if err := produce([]byte("W")); err != nil {
				return fmt.Errorf("warm-up produce: %w", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	if side == "meshka" {
		child, err = startNodeChild(up.addrs(), childStream+"="+h1Topic)
		if err != nil {
			x.err = err.Error()
			return x
		}
		var clients []*sseClient
		ended = func() int {
			e := 0
			for _, c := range clients {
				select {
				case <-c.done:
					e++
				default:
				}
			}
			return e
		}
		stop = func() error {
			err := closeSSE(clients)
			child.stop()
			return err
		}
		defer func() {
			if stop != nil {
				_ = stop()
			}
		}()
		first := &reader{}
		c, err := dialSSE(child.http, "/stream", count(first))
		if err != nil {
			x.err = "first client: " + err.Error()
			return x
		}
		clients, readers = append(clients, c), append(readers, first)
		if err := warmAll(); err != nil {
			x.err = err.Error()
			return x
		}
		if mem0, err = child.memory(); err != nil {
			x.err = err.Error()
			return x
		}
		start := time.Now()
		more := make([]*sseClient, n)
		rds := make([]*reader, n)
		_, err = dialEach(n, func(i int) (net.Conn, error) {
			rds[i] = &reader{}
			c, err := dialSSE(child.http, "/stream", count(rds[i]))
			if err != nil {
				return nil, err
			}
			more[i] = c
			return c.nc, nil
		})
		for i, c := range more {
			if c != nil {
				clients, readers = append(clients, c), append(readers, rds[i])
			}
		}
		x.extra["connect"] = time.Since(start).Seconds()
		x.extra["clients"] = float64(len(more))
		if err != nil {
			x.err = err.Error()
			return x
		}
	} else {
		rd := &reader{}
		readers = append(readers, rd)
		cl, err := kgo.NewClient(clientOpts(up.addrs(), b.opts.debug,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{h1Topic: {0: kgo.NewOffset().At(0)}}))...)
		if err != nil {
			x.err = err.Error()
			return x
		}
		done := make(chan struct{})
		cctx, ccancel := context.WithCancel(ctx)
		event := count(rd)
		go func() {
			defer close(done)
			for cctx.Err() == nil {
				cl.PollFetches(cctx).EachRecord(func(r *kgo.Record) { event(r.Value) })
			}
		}()
		stop = func() error {
			ccancel()
			<-done
			cl.Close()
			return nil
		}
		defer func() {
			if stop != nil {
				_ = stop()
			}
		}()
	}
	if err := warmAll(); err != nil {
		x.err = err.Error()
		return x
	}

	// Random letters: no line breaks for the stream's data lines, and
	// uncompressed, so what upstream sends is the records' size.
	pl := newPayload()
	values := make([][]byte, c.records)
	for i := range values {
		v := pl.value(int64(i))[:h1Value]
		l := make([]byte, h1Value)
		l[0] = 'B'
		for j := 1; j < h1Value; j++ {
			l[j] = 'a' + v[j]%26
		}
		values[i] = l
	}
	// The records go in steps that every reader must have before the
	// next: the clients are slower than the node's fan-out when they all
	// get a burst at once, and a stream that falls behind is paced.
	want := int64(c.records) * int64(len(readers))
	mark := up.Sent()
	start := time.Now()
	for from := 0; from < len(values) && x.err == ""; from += h1Step {
		for _, v := range values[from:min(from+h1Step, len(values))] {
			prod.Produce(ctx, &kgo.Record{Value: v}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			x.err = "produce: " + err.Error()
			return x
		}
		step := int64(min(from+h1Step, len(values))) * int64(len(readers))
		for tick := 0; ; tick++ {
			var got int64
			for _, rd := range readers {
				got += rd.got.Load()
			}
			x.records = got
			if got >= step {
				break
			}
			if ctx.Err() != nil {
				x.err = fmt.Sprintf("%d of %d events delivered", got, want)
				break
			}
			if tick%10 == 0 && ended != nil {
				if e := ended(); e > 0 {
					x.err = fmt.Sprintf("%d streams ended early (%d of %d events delivered)", e, got, want)
					break
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	x.elapsed = time.Since(start)
	x.upstream = up.Sent() - mark
	if x.err == "" && x.records != want {
		x.err = fmt.Sprintf("%d of %d events delivered", x.records, want)
	}
	if x.err != "" {
		return x
	}
	if child != nil {
		mem1, err := child.memory()
		if err != nil {
			x.err = err.Error()
			return x
		}
		x.extra["rss"] = float64(mem1.rss-mem0.rss) / 1024 / float64(n)
		x.extra["heap"] = float64(mem1.heapInuse-mem0.heapInuse) / 1024 / float64(n)
		x.extra["stack"] = float64(mem1.stackInuse-mem0.stackInuse) / 1024 / float64(n)
		x.extra["goroutines"] = float64(mem1.goroutines-mem0.goroutines) / float64(n)
	}
	err = stop()
	stop = nil
	prod.Close()
	x.extra["total"] = float64(up.Sent() - before)
	if err != nil {
		x.err = err.Error()
	}
	return x
}
