package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/config"
)

// R1 and R2: a normal producer and consumer through a meshka node while
// hostile connections hold on to it: 50 that pipeline Fetches below the
// partition cache's window and never read the answers, and 40 that send
// only a size prefix announcing 100 MiB. The node runs in a child process
// so its resident memory is its own.
const (
	attackFetchers   = 50
	attackFetchesPer = 8
	attackPrefixes   = 40
	attackBacklog    = 128 << 20 // the fetchers' topic: twice the default partition cache
	attackDuration   = 5 * time.Second
	attackQuick      = 2 * time.Second
)

func runAttack(b *bench) section {
	s := section{heads: [2]string{"calm median", "under attack median"}}
	dur := attackDuration
	backlog := int64(attackBacklog)
	if b.opts.quick {
		dur, backlog = attackQuick, 32<<20
	}
	fail := func(msg string) section {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+msg)
		return s
	}
	up, backlogTopic, err := preloadedUpstream(b, "R1", "bench-attack-backlog", backlog/valueSize)
	if err != nil {
		return fail(err.Error())
	}
	defer up.close()
	def := config.Default()
	var calmP, calmC, hitP, hitC, calmRSS, hitRSS []float64
	for r := range b.roundsFor("R1/R2", b.opts.rounds) {
		for _, side := range []string{"calm", "attacked"} {
			collectGarbage()
			var x sample
			labelled("R1", side, func() { x = attackOnce(b, up, backlogTopic, side, r, dur) })
			s.samples = append(s.samples, x)
			if x.err != "" {
				b.failed = true
				b.progress("R1 round %d %s: FAILED: %s", r, side, x.err)
				s.notes = append(s.notes, fmt.Sprintf("FAILED: round %d %s: %s", r, side, x.err))
				continue
			}
			b.progress("R1 round %d/%d %-8s produce %7.1f MB/s, consume %7.1f MB/s, node RSS peak %6.0f MiB",
				r, b.opts.rounds, side, x.extra["produce"], x.extra["consume"], x.extra["rss"])
			if side == "calm" {
				calmP, calmC, calmRSS = append(calmP, x.extra["produce"]), append(calmC, x.extra["consume"]), append(calmRSS, x.extra["rss"])
			} else {
				hitP, hitC, hitRSS = append(hitP, x.extra["produce"]), append(hitC, x.extra["consume"]), append(hitRSS, x.extra["rss"])
			}
		}
	}
	budgets := float64(int64(def.Kafka.MaxRequestMemory)+int64(def.Kafka.MaxResponseMemory)+int64(def.Cache.NodeMaxBytes)) / (1 << 20)
	s.rows = []row{
		{id: "R1 produce", what: "a normal producer's acknowledged MB/s while 50 non-reading fetchers and 40 bare 100 MiB prefixes hold connections, ÷ the same without them",
			unit: "MB/s", direct: calmP, meshka: hitP, target: "≥ 0.8", check: func(x float64) bool { return x >= 0.8 }},
		{id: "R1 consume", what: "a normal consumer's delivered MB/s, same runs",
			unit: "MB/s", direct: calmC, meshka: hitC, target: "≥ 0.8", check: func(x float64) bool { return x >= 0.8 }},
		{id: "R2", what: fmt.Sprintf("meshka node's peak RSS under the attack (calm: without it); budgets: request %s + response %s + cache %s = %.0f MiB",
			def.Kafka.MaxRequestMemory, def.Kafka.MaxResponseMemory, def.Cache.NodeMaxBytes, budgets),
			unit: "MiB", direct: calmRSS, meshka: hitRSS, result: absolute("MiB"),
			target: fmt.Sprintf("≤ %.0f MiB (budgets + 200 MB)", budgets+200e6/(1<<20)), check: func(x float64) bool { return x <= budgets+200e6/(1<<20) }},
	}
	s.raw = func(x sample) []string {
		return []string{fmt.Sprintf("%.2f s", x.elapsed.Seconds()), fmt.Sprintf("%.1f", x.extra["produce"]), fmt.Sprintf("%.1f", x.extra["consume"]),
			fmt.Sprintf("%.0f", x.extra["rss"]), fmt.Sprintf("%.0f", x.extra["readthrough"])}
	}
	s.rawHead = []string{"elapsed", "produce MB/s", "consume MB/s", "node RSS peak MiB", "attack MiB read through"}
	s.notes = append(s.notes,
		fmt.Sprintf("Each run starts a fresh meshka node with the default configuration in a child process (so its RSS is its own) in front of "+
			"the in-process kfake, then runs one franz-go producer (defaults, linger 0, 1 KiB random values) into a fresh single-partition "+
			"topic and one franz-go consumer of that topic from its start, both for %s; MB/s are values acknowledged and values delivered "+
			"in that window. Calm and attacked runs alternate.", dur),
		fmt.Sprintf("The attack, started before the normal clients and held through the run: %d connections that each send %d Fetch "+
			"requests (MaxBytes 50 MB) for offset 0 of a %d MiB topic and read nothing (a reader at that topic's end keeps the partition "+
			"cache's window there, so every one of them reads through to upstream), and %d connections that send only a size prefix of "+
			"100 MiB. The node's request budget holds a 64 KiB first chunk per prefix, its response budget bounds the records read through "+
			"for the fetchers (those over it are answered empty), and kafka.write_timeout (30 s) would cut the fetchers off after the run.",
			attackFetchers, attackFetchesPer, backlog>>20, attackPrefixes),
		"What limits it: the fetchers' read-throughs queue on kfake's single goroutine beside the normal clients' requests, and the "+
			"normal clients, kfake, the child node and the attackers share 2 cores; before kafka.max_response_memory (at 622332f) the same "+
			"attack took a node's RSS to 2.5-2.9 GB.",
	)
	return s
}

func attackOnce(b *bench, up *upstream, backlogTopic, side string, round int, dur time.Duration) sample {
	x := sample{round: round, side: side, extra: map[string]float64{}}
	ctx, cancel := context.WithTimeout(context.Background(), dur+2*time.Minute)
	defer cancel()
	child, err := startNodeChild(up.addrs())
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer child.stop()
	var peak atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if rss := procRSS(child.cmd.Process.Pid); rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-t.C:
			case <-stopSampling:
				return
			}
		}
	}()

	var hostile []net.Conn
	defer func() {
		for _, c := range hostile {
			c.Close()
		}
	}()
	if side == "attacked" {
		tail, err := kgo.NewClient(clientOpts([]string{child.addr}, b.opts.debug,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{backlogTopic: {0: kgo.NewOffset().AtEnd()}}))...)
		if err != nil {
			x.err = err.Error()
			return x
		}
		defer tail.Close()
		tailCtx, stopTail := context.WithCancel(ctx)
		defer stopTail()
		go func() {
			for tailCtx.Err() == nil {
				tail.PollFetches(tailCtx)
			}
		}()
		time.Sleep(500 * time.Millisecond) // the tail reader's stream is running
		for i := 0; i < attackFetchers; i++ {
			c, err := hostileFetcher(child.addr, backlogTopic)
			if err != nil {
				x.err = err.Error()
				return x
			}
			hostile = append(hostile, c)
		}
		for i := 0; i < attackPrefixes; i++ {
			c, err := net.Dial("tcp", child.addr)
			if err != nil {
				x.err = err.Error()
				return x
			}
			hostile = append(hostile, c)
			if _, err := c.Write(binary.BigEndian.AppendUint32(nil, 100<<20)); err != nil {
				x.err = err.Error()
				return x
			}
		}
		time.Sleep(time.Second) // the fetchers' read-throughs are under way
	}

	topic := fmt.Sprintf("bench-attack-work-%d", time.Now().UnixNano())
	if err := up.createTopic(ctx, topic, 1, produceTopicConfigs...); err != nil {
		x.err = err.Error()
		return x
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		_ = up.deleteTopic(dctx, topic)
	}()
	before := up.Sent()
	produced, consumed, err := normalClients(ctx, b, child.addr, topic, dur)
	if err != nil {
		x.err = err.Error()
		return x
	}
	close(stopSampling)
	<-sampled
	x.elapsed = dur
	x.extra["produce"] = float64(produced) / 1e6 / dur.Seconds()
	x.extra["consume"] = float64(consumed) / 1e6 / dur.Seconds()
	x.extra["rss"] = float64(peak.Load()) / (1 << 20)
	x.extra["readthrough"] = float64(up.Sent()-before) / (1 << 20)
	x.bytes = produced
	return x
}

// hostileFetcher connects and sends attackFetchesPer Fetches for offset 0
// of topic, then reads nothing.
func hostileFetcher(addr, topic string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10)
	}
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("attacker"))
	for i := int32(0); i < attackFetchesPer; i++ {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxBytes, req.SessionEpoch = 11, 50<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 50 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		if _, err := c.Write(f.AppendRequest(nil, req, i)); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// normalClients runs one producer and one consumer of topic for dur and
// returns the value bytes acknowledged and delivered within it.
func normalClients(ctx context.Context, b *bench, addr, topic string, dur time.Duration) (produced, consumed int64, err error) {
	p, err := kgo.NewClient(clientOpts([]string{addr}, b.opts.debug, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))...)
	if err != nil {
		return 0, 0, err
	}
	defer p.Close()
	c, err := kgo.NewClient(clientOpts([]string{addr}, b.opts.debug, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	runCtx, stop := context.WithTimeout(ctx, dur)
	defer stop()
	var acked, got atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for runCtx.Err() == nil {
			fs := c.PollFetches(runCtx)
			fs.EachRecord(func(r *kgo.Record) { got.Add(int64(len(r.Value))) })
		}
	}()
	pl := newPayload()
	var firstErr atomic.Value
	for i := int64(0); runCtx.Err() == nil; i++ {
		p.Produce(runCtx, &kgo.Record{Value: pl.value(i)}, func(r *kgo.Record, err error) {
			if err != nil {
				if runCtx.Err() == nil {
					firstErr.CompareAndSwap(nil, err)
				}
				return
			}
			if runCtx.Err() == nil {
				acked.Add(int64(len(r.Value)))
			}
		})
	}
	produced, consumed = acked.Load(), got.Load()
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return produced, consumed, fmt.Errorf("produce: %w", e)
	}
	return produced, consumed, nil
}
