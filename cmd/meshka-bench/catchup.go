package main

import (
	"fmt"

	"github.com/meshka/meshka/config"
)

const (
	// catchupBacklog is P4₁'s preload: eight times the default partition
	// cache (cache.partition_max_bytes, 64 MiB), so a reader from the
	// start cannot be served by a cache that simply holds everything, and
	// long enough (a second or more direct) that connecting is noise.
	catchupBacklog      = 512 << 20
	catchupBacklogQuick = 128 << 20
)

// runCatchup is P4₁: one franz-go reader of a partition nobody else
// reads, from its start, with a backlog several times the partition
// cache: the commonest reader, catching up. A fresh meshka node per run,
// so its cache is cold, with the default cache sizes.
func runCatchup(b *bench) section {
	s := section{}
	backlog := int64(catchupBacklog)
	if b.opts.quick {
		backlog = catchupBacklogQuick
	}
	records := backlog / valueSize
	fail := func(msg string) section {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+msg)
		return s
	}
	up, topic, err := preloadedUpstream(b, "P4₁", "bench-catchup", records)
	if err != nil {
		return fail(err.Error())
	}
	defer up.close()
	def := config.Default().Cache

	var direct, meshka []float64
	rounds := b.opts.produceRounds()
	for r := range b.roundsFor("P4₁", rounds) {
		for _, side := range []string{"direct", "meshka"} {
			collectGarbage()
			var x sample
			labelled("P4_1", side, func() { x = fanoutOnce(b, up, topic, records, side, 1, r, nil) })
			x.case_ = ""
			s.samples = append(s.samples, x)
			if x.err != "" {
				b.failed = true
				b.progress("P4₁ round %d %s: FAILED: %s", r, side, x.err)
				s.notes = append(s.notes, fmt.Sprintf("FAILED: round %d %s: %s", r, side, x.err))
				continue
			}
			b.progress("P4₁ round %d/%d %-6s %8.1f MB/s in %5.2f s, upstream sent %7.1f MiB",
				r, rounds, side, x.mbps(), x.elapsed.Seconds(), float64(x.upstream)/(1<<20))
			if side == "direct" {
				direct = append(direct, x.mbps())
			} else {
				meshka = append(meshka, x.mbps())
			}
		}
	}
	s.rows = []row{{
		id: "P4₁", what: fmt.Sprintf("delivered MB/s, one reader of a cold partition from its start, %d MiB backlog (%d× the partition cache)",
			backlog>>20, backlog/int64(def.PartitionMaxBytes)),
		unit: "MB/s", direct: direct, meshka: meshka,
		target: "≥ 0.9", check: func(x float64) bool { return x >= 0.9 },
	}}
	s.notes = append(s.notes,
		fmt.Sprintf("Preload: %d MiB of 1 KiB random values (%d records) in one single-partition topic, produced straight upstream once. "+
			"The reader is one franz-go client (ConsumePartitions, partition 0 from offset 0, no group, default fetch sizes: 50 MiB per "+
			"request, 1 MiB per partition) that checks every offset arrives once, in order, as P4's readers do.", backlog>>20, records),
		fmt.Sprintf("Each meshka run starts a fresh node with the default cache sizes (cache.partition_max_bytes %d MiB, node_max_bytes %d MiB), "+
			"so the backlog is %d times what the partition may hold and the reader starts on a cold cache. Upstream MiB in the raw table "+
			"is everything kfake wrote during the run: about the backlog once when the reader's data came through one upstream read.",
			int64(def.PartitionMaxBytes)>>20, int64(def.NodeMaxBytes)>>20, backlog/int64(def.PartitionMaxBytes)),
		"Delivered MB/s = record values received ÷ wall time from creating the client until it has the last record. "+
			"Run alone with `go run ./cmd/meshka-bench -only P4_1`.",
		"What limits it: the reader is served from the cache as the partition's stream fills it, and the stream reads the backlog once "+
			"(upstream MiB ≈ the backlog), 1 MiB per upstream read as the reader asks, with the next read on its way while the last is cached "+
			"in the buffer it was read into. The stream waits for the reader when half the cache lies ahead of it, so a slower reader is "+
			"never overtaken by evictions. Once the reader has caught up with the stream it waits on each upstream read, which takes about "+
			"as long as the direct reader's own (kfake answers both alike, on one goroutine); every byte then crosses loopback twice (kfake to "+
			"meshka, meshka to the reader) on the same 2 cores as kfake and the reader, which is what the ratio below 1 is, and it moves by "+
			"several percent with other load on the machine (see the round ratios). With meshka as of 622332f (before this work) the reader got 0.51-0.81 "+
			"of direct (0.73 typical): 4 MiB upstream reads took about 10 ms each (kfake builds a multi-batch answer by appending), and the copy into the "+
			"cache (a quarter of meshka's CPU in the run) and the actor's mailbox sat between one upstream read and the next.",
		pairedRatios(s.samples),
	)
	return s
}
