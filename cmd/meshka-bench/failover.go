package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/config"
)

const (
	failoverPartitions = 12
	// failoverRate paces the producer: 100-byte records, so a partition is
	// acknowledged every few milliseconds and a pause stands out.
	failoverRate   = 5000 // records per second
	failoverBefore = 6 * time.Second
)

// runFailover is C5 and C6: a producer writing steadily through three
// nodes while one of them is killed (C5) or leaves (C6); the figure is
// how long the partitions that node led went without an acknowledgement.
func runFailover(b *bench) section {
	s := section{}
	up, err := startUpstream(b.opts.debug)
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED to start the upstream: "+err.Error())
		return s
	}
	defer up.close()
	suspicion := config.Default().Cluster.SuspicionTimeout.D()
	pauses := map[string][]float64{}
	ran := 0
	for r := range b.roundsFor("C5/C6", b.opts.rounds) {
		ran = r
		for _, how := range []string{"crash", "leave"} {
			collectGarbage()
			x := failoverOnce(b, up, how, r, suspicion)
			s.samples = append(s.samples, x)
			if x.err != "" {
				b.failed = true
				b.progress("C5/C6 round %d %s: FAILED: %s", r, how, x.err)
				s.notes = append(s.notes, fmt.Sprintf("FAILED: round %d %s: %s", r, how, x.err))
				continue
			}
			b.progress("C5/C6 round %d/%d %-5s longest pause on a moved partition %.3f s (%d records acked)", r, b.opts.rounds, how, x.extra["pause"], x.records)
			pauses[how] = append(pauses[how], x.extra["pause"])
		}
	}
	limit := suspicion.Seconds() + 1
	s.rows = []row{
		{id: "C5", what: fmt.Sprintf("crash failover: s from one node's death (no leave, every connection cut) until the partitions it led are acknowledged again (the longest gap between acks on one of them), median of %d round(s)", ran),
			unit: "s", meshka: pauses["crash"], result: seconds3,
			target: fmt.Sprintf("≤ %.1f s (suspicion_timeout %s + 1 s)", limit, suspicion), check: func(x float64) bool { return x <= limit }},
		{id: "C6", what: fmt.Sprintf("graceful leave: the same pause when the node leaves (SIGTERM's shutdown), median of %d round(s)", ran),
			unit: "s", meshka: pauses["leave"], result: seconds3,
			target: "≤ 1 s", check: func(x float64) bool { return x <= 1 }},
	}
	s.heads = [2]string{"—", "meshka"}
	s.rawHead = []string{"records acked", "moved partitions", "longest pause s", "produce errors"}
	s.raw = func(x sample) []string {
		return []string{fmt.Sprint(x.records), fmt.Sprint(int(x.extra["moved"])), fmt.Sprintf("%.3f", x.extra["pause"]), fmt.Sprint(int(x.extra["errors"]))}
	}
	s.notes = append(s.notes,
		fmt.Sprintf("Three nodes in this process with the default cluster timings (probe_interval %s, suspicion_timeout %s, leave_timeout %s), a fresh cluster "+
			"and a %d-partition topic per run; an idempotent franz-go producer (defaults, linger 0) seeded with all three nodes writes %d records/s of "+
			"100 bytes; after %s node 1 is killed (Node.Crash: memberlist stopped without a leave, every client connection cut: what a SIGKILL "+
			"does, in process) or shut down as on SIGTERM. The pause is, over the partitions node 1 led, the longest time between two "+
			"acknowledgements on one partition from %s before the event to the end of the run.",
			config.Default().Cluster.ProbeInterval.D(), suspicion, config.Default().Cluster.LeaveTimeout.D(), failoverPartitions, failoverRate, failoverBefore, failoverBefore/2),
		"The producer runs for "+failoverBefore.String()+" first, longer than franz-go's MetadataMinAge (5 s), as a long-running one has: "+
			"franz-go refreshes metadata at most once per MetadataMinAge, so a leader change right after a refresh waits out the rest of it, "+
			"against meshka or Kafka alike.",
		"What a crash's pause is made of (a run with -debug, default timings): the producer's first refresh right after the kill still "+
			"names the dead node, which the survivors list until memberlist declares it dead — 6.8 s after the kill in that run: up to a probe "+
			"interval until a survivor probes it, the probe and indirect-probe timeouts, then suspicion_timeout — and its next refresh comes "+
			"a MetadataMinAge after the first, 10.0 s after the kill. Lower cluster.suspicion_timeout and cluster.probe_interval (and the "+
			"client's MetadataMinAge) shorten it; no node can know sooner that a silent node is dead rather than paused.",
		"A leaving node tells its peers first and then drops itself from its own view, so its Metadata names the new leaders and it "+
			"answers NOT_LEADER_OR_FOLLOWER, and the producer moves at its next metadata refresh, at once for a producer whose last "+
			"refresh is older than MetadataMinAge.")
	return s
}

func failoverOnce(b *bench, up *upstream, how string, round int, suspicion time.Duration) sample {
	x := sample{case_: how, round: round, side: "meshka", extra: map[string]float64{}}
	topic := fmt.Sprintf("bench-failover-%s-%d-%d", how, round, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := up.createTopic(ctx, topic, failoverPartitions); err != nil {
		x.err = err.Error()
		return x
	}
	defer up.deleteTopic(context.Background(), topic)
	nodes, err := up.startCluster(clusterNodes, nil)
	if err != nil {
		stopCluster(b, nodes)
		x.err = "start meshka: " + err.Error()
		return x
	}
	defer func() { stopCluster(b, nodes) }()
	var seeds []string
	for _, n := range nodes {
		seeds = append(seeds, n.Addr().String())
	}
	cl, err := kgo.NewClient(clientOpts(seeds, b.opts.debug, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))...)
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer cl.Close()

	pctx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	var mu sync.Mutex
	acks := map[int32][]time.Time{}
	var errs int
	promise := func(r *kgo.Record, err error) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if pctx.Err() == nil { // not the records the run's end cancelled
				errs++
			}
			return
		}
		acks[r.Partition] = append(acks[r.Partition], now)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second / 100)
		defer tick.Stop()
		value := make([]byte, 100)
		for {
			select {
			case <-pctx.Done():
				return
			case <-tick.C:
			}
			for range failoverRate / 100 {
				cl.Produce(pctx, &kgo.Record{Value: value}, promise)
			}
		}
	}()

	select {
	case <-time.After(failoverBefore):
	case <-ctx.Done():
	}
	const victim = 1
	var moved []int32
	for p := int32(0); p < failoverPartitions; p++ {
		if nodes[0].Registry().Owner(partition.Kind, partition.Identity("default", topic, p)).ID == victim {
			moved = append(moved, p)
		}
	}
	t0 := time.Now()
	// Long enough for the client's MetadataMinAge (5 s) to pass once more
	// after the change, so a slow move is measured rather than cut off.
	after := 4*time.Second + 5*time.Second
	if how == "crash" {
		nodes[victim].Crash()
		after += suspicion
	} else {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		nodes[victim].Shutdown(sctx)
		scancel()
	}
	nodes[victim] = nil
	select {
	case <-time.After(time.Until(t0.Add(after))):
	case <-ctx.Done():
	}
	stopProducing()
	<-done
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	cl.Flush(fctx)
	fcancel()

	mu.Lock()
	defer mu.Unlock()
	from := t0.Add(-failoverBefore / 2)
	var pause time.Duration
	for _, p := range moved {
		last := from
		for _, at := range acks[p] {
			if at.Before(from) {
				continue
			}
			pause = max(pause, at.Sub(last))
			last = at
		}
		if last.Before(t0) {
			x.err = fmt.Sprintf("partition %d had no acknowledgement after node %d's %s", p, victim, how)
		}
	}
	for _, ts := range acks {
		x.records += int64(len(ts))
	}
	x.extra["pause"] = pause.Seconds()
	x.extra["moved"] = float64(len(moved))
	x.extra["errors"] = float64(errs)
	if len(moved) == 0 {
		x.err = fmt.Sprintf("node %d led none of the %d partitions", victim, failoverPartitions)
	}
	return x
}

// seconds3 is a row result: the meshka figure in seconds, to the
// millisecond (a leave's pause is tens of them).
func seconds3(_, m float64) (float64, string) { return m, fmt.Sprintf("%.3f s", m) }
