package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	m4Subscribers = 1000
	m4Records     = 2000
	m4Quick       = 500
	m4Value       = 1024
	m4Topic       = "bench/m4"
	m4Kafka       = "mqtt-messages"
)

// runMQTTUpstream is M4: m4Subscribers MQTT subscribers of one topic on
// one meshka node, against one Kafka reader of the same records straight
// from upstream: the bytes upstream sends, as P3 counts them.
func runMQTTUpstream(b *bench) section {
	s := section{heads: [2]string{"one Kafka reader median", "meshka median"}}
	records := m4Records
	if b.opts.quick {
		records = m4Quick
	}
	if err := raiseFileLimit(2*m4Subscribers + 1000); err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+err.Error())
		return s
	}
	per := map[string][]float64{}
	for r := range b.roundsFor("M4", b.opts.rounds) {
		for _, side := range []string{"direct", "meshka"} {
			collectGarbage()
			var x sample
			labelled("M4", side, func() { x = m4Once(b, side, r, records) })
			s.samples = append(s.samples, x)
			if x.err != "" {
				b.failed = true
				b.progress("M4 round %d %s: FAILED: %s", r, side, x.err)
				s.notes = append(s.notes, fmt.Sprintf("FAILED: round %d %s: %s", r, side, x.err))
				continue
			}
			b.progress("M4 round %d/%d %-6s upstream sent %6.3f MiB (%.3f MiB before the records; %d messages delivered in %.2f s)",
				r, b.opts.rounds, side, float64(x.upstream)/(1<<20), x.extra["setup"]/(1<<20), x.records, x.elapsed.Seconds())
			per[side] = append(per[side], float64(x.upstream)/(1<<20))
			per[side+" records"] = append(per[side+" records"], (float64(x.upstream)-x.extra["setup"])/(1<<20))
		}
	}
	s.rows = []row{{
		id: "M4", what: fmt.Sprintf("upstream MiB sent: %d MQTT subscribers (QoS 1) of one topic on one meshka node vs ONE Kafka reader of the same %d records of %d bytes", m4Subscribers, records, m4Value),
		unit: "MiB", direct: per["direct"], meshka: per["meshka"], target: "≤ 1.05", check: func(x float64) bool { return x <= 1.05 },
	}, {
		id: "M4 records", what: "the same runs' upstream MiB from the first measured record on (connecting, subscribing and the warm-up left out)",
		unit: "MiB", direct: per["direct records"], meshka: per["meshka records"],
	}}
	s.rawHead = []string{"upstream sent MiB", "of which before the records", "readers", "messages delivered", "delivery s"}
	s.raw = func(x sample) []string {
		return []string{fmt.Sprintf("%.3f", float64(x.upstream)/(1<<20)), fmt.Sprintf("%.3f", x.extra["setup"]/(1<<20)),
			fmt.Sprint(int64(x.extra["readers"])), fmt.Sprint(x.records),
			fmt.Sprintf("%.2f", x.elapsed.Seconds())}
	}
	s.notes = append(s.notes,
		fmt.Sprintf("Method: per run a fresh kfake upstream with the mapper's three topics (one partition each). meshka: a fresh node, %d "+
			"subscribers (the bench's raw MQTT 3.1.1 client, clean session, QoS 1, each message acknowledged at once) of %s; direct: one "+
			"franz-go consumer of %s's partition from offset 0. A franz-go producer writes straight to upstream, on both sides alike: "+
			"warm-up records every 20 ms until every reader has one, then %d records of %d bytes keyed %s with the header mqtt:qos=1 "+
			"(what the mapper writes for a QoS 1 publish, docs/mqtt.md), which every reader must receive.", m4Subscribers, m4Topic, m4Kafka,
			records, m4Value, m4Topic),
		"Upstream bytes are everything the kfake brokers wrote to any client from before the node (or consumer) starts until it, its "+
			"subscribers and the producer are closed, counted at the socket as in P3: fetch and metadata responses, and on both sides the "+
			"producer's produce responses; through meshka also the sessions and retained tables' reads of their (empty) topics. "+
			"The direct column is one Kafka reader: N direct Kafka readers would cost N times it.",
		"What the difference is made of (the raw table's \"before the records\" column, and M4 records): the records themselves cost "+
			"meshka what they cost the one reader, as its 1000 subscriptions share the node's one reader of the partition. What meshka adds "+
			"comes before them and grows with the subscribers, about 57 bytes each: every Latest subscription resolves its start with a "+
			"ListOffsets request of its own (mesh/subscribe.go:168, offsetAt, through upstream/fetch.go OffsetAt; a run counting requests "+
			"at kfake saw 1004 ListOffsets from the meshka side against none from the direct reader). So the ratio depends on how much is "+
			"read afterwards: a trial run at 1000 records (1 MiB) instead of 2000 came out at 1.063. Resolving Latest from the end the "+
			"partition's shared reader already knows, when it is reading, would take that out.",
		"Delivery (the raw table's delivery s: from the first measured record produced until every subscriber has all of them) is not a "+
			"figure of this measurement; at QoS 1 each subscriber acknowledges every message, and 1000 subscribers, kfake and meshka share "+
			"2 cores. Before the fix at ba2fd86 to mappers/mqtt/outbox.go (net.Buffers wrote through the listener's connection wrapper, "+
			"which hides *net.TCPConn's writev, so each queued packet was a write syscall of its own: 40% of the samples of a profiled run), "+
			"the same runs took 11.4-14.2 s, alternated with runs after it at 4.9-6.2 s.",
	)
	return s
}

// m4Once runs one side of one M4 round on a fresh upstream.
func m4Once(b *bench, side string, round, records int) sample {
	x := sample{case_: "M4", round: round, side: side, extra: map[string]float64{}}
	up, err := mqttUpstream(b)
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer up.close()
	before := up.Sent()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var got func() (warm int, measured int64)
	var readers int
	var stop func() error
	if side == "meshka" {
		br, err := startMQTTSide(b, side, up, "", nil)
		if err != nil {
			x.err = err.Error()
			return x
		}
		subs, err := dialSubs(br.addr, "m4-sub", m4Subscribers, m4Topic, 1, false)
		if err != nil {
			br.stop()
			x.err = err.Error()
			return x
		}
		readers = m4Subscribers
		got = func() (int, int64) {
			var w int
			var n int64
			for _, s := range subs {
				if s.warm.Load() {
					w++
				}
				n += s.got.Load()
			}
			return w, n
		}
		stop = func() error {
			closeSubs(subs)
			br.stop()
			return subsErr(subs)
		}
	} else {
		cl, err := kgo.NewClient(clientOpts(up.addrs(), b.opts.debug,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{m4Kafka: {0: kgo.NewOffset().At(0)}}))...)
		if err != nil {
			x.err = err.Error()
			return x
		}
		var warm atomic.Bool
		var n atomic.Int64
		done := make(chan struct{})
		cctx, ccancel := context.WithCancel(ctx)
		go func() {
			defer close(done)
			for cctx.Err() == nil {
				cl.PollFetches(cctx).EachRecord(func(r *kgo.Record) {
					switch {
					case len(r.Value) == 0:
					case r.Value[0] == 'W':
						warm.Store(true)
					case r.Value[0] == 'B':
						n.Add(1)
					}
				})
			}
		}()
		readers = 1
		got = func() (int, int64) {
			w := 0
			if warm.Load() {
				w = 1
			}
			return w, n.Load()
		}
		stop = func() error {
			ccancel()
			<-done
			cl.Close()
			return nil
		}
	}
	x.extra["readers"] = float64(readers)

	prod, err := kgo.NewClient(clientOpts(up.addrs(), b.opts.debug, kgo.DefaultProduceTopic(m4Kafka))...)
	if err != nil {
		_ = stop()
		x.err = err.Error()
		return x
	}
	qos1 := []kgo.RecordHeader{{Key: "mqtt:qos", Value: []byte("1")}}
	produce := func(mark byte, size int) error {
		return prod.ProduceSync(ctx, &kgo.Record{Key: []byte(m4Topic), Value: markedPayload(mark, size), Headers: qos1}).FirstErr()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if w, _ := got(); w == readers {
			break
		}
		if time.Now().After(deadline) {
			w, _ := got()
			x.err = fmt.Sprintf("%d of %d readers had a warm-up record after 30s", w, readers)
			break
		}
		if err := produce('W', 16); err != nil {
			x.err = "warm-up produce: " + err.Error()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if x.err == "" {
		// Random values, as in P1, so the producer's compression cannot
		// shrink what upstream sends.
		pl := newPayload()
		x.extra["setup"] = float64(up.Sent() - before)
		start := time.Now()
		for i := range records {
			v := append([]byte{'B'}, pl.value(int64(i))[1:m4Value]...)
			prod.Produce(ctx, &kgo.Record{Key: []byte(m4Topic), Value: v, Headers: qos1}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			x.err = "produce: " + err.Error()
		}
		want := int64(records) * int64(readers)
		for {
			_, n := got()
			if n >= want || ctx.Err() != nil {
				x.records = n
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		x.elapsed = time.Since(start)
		if x.records != want && x.err == "" {
			x.err = fmt.Sprintf("%d of %d messages delivered", x.records, want)
		}
	}
	if err := stop(); err != nil && x.err == "" {
		x.err = err.Error()
	}
	prod.Close()
	x.upstream = up.Sent() - before
	return x
}
