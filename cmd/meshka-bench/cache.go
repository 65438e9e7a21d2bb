package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/records"
)

const (
	cachePreload      = 256 << 20
	cachePreloadQuick = 64 << 20
	// cacheSample is the least a timed sample reads.
	cacheSample      = 1 << 30
	cacheSampleQuick = 256 << 20
	// rawChunk is what the raw TCP sender writes per call and the
	// receiver reads per call.
	rawChunk = 1 << 20
	// fetchPartMaxBytes is the lean reader's per-partition fetch size:
	// franz-go's default, so each fetch carries what a real consumer's
	// would.
	fetchPartMaxBytes = 1 << 20
)

// runCache is P5: how fast a warm partition cache is served to one
// reader, against what loopback TCP carries on the same machine.
func runCache(b *bench) section {
	s := section{}
	preload := int64(cachePreload)
	if b.opts.quick {
		preload = cachePreloadQuick
	}
	records := preload / valueSize
	cacheBytes := config.Size(2 * preload)
	tune := cacheHolding(cacheBytes)
	fail := func(msg string) section {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+msg)
		return s
	}
	up, topic, err := preloadedUpstream(b, "P5", "bench-cache", records)
	if err != nil {
		return fail(err.Error())
	}
	defer up.close()
	nd, err := up.startNode(tune)
	if err != nil {
		return fail("start meshka: " + err.Error())
	}
	defer func() {
		if err := stopNode(b, nd); err != nil {
			b.progress("P5: meshka shutdown: %v", err)
		}
	}()
	addr := nd.Addr().String()
	// The first reader fills the cache from upstream; every timed read
	// after it is served from memory.
	warmStart := time.Now()
	warm := leanRead(addr, topic, records)
	if warm.err != "" {
		return fail("warming reader: " + warm.err)
	}
	b.progress("P5 cache warmed in %s", time.Since(warmStart).Round(time.Millisecond))

	// Each timed sample reads the partition passes times, so it lasts
	// long enough (a GiB or more) that starting a connection is noise.
	sampleBytes := int64(cacheSample)
	if b.opts.quick {
		sampleBytes = cacheSampleQuick
	}
	passes := int((sampleBytes + preload - 1) / preload)
	var raw, lean, franz []float64
	for r := range b.roundsFor("P5", b.opts.rounds) {
		x := rawLoopback(warm.bytes * int64(passes))
		x.round, x.side, x.case_ = r, "raw TCP", "loopback"
		s.samples = append(s.samples, x)
		if x.err != "" {
			b.failed = true
			s.notes = append(s.notes, fmt.Sprintf("FAILED: round %d raw TCP: %s", r, x.err))
		} else {
			raw = append(raw, x.mbps())
		}
		y := repeat(passes, func() sample { return leanRead(addr, topic, records) })
		y.round, y.side, y.case_ = r, "meshka", "lean reader"
		s.samples = append(s.samples, y)
		if y.err != "" {
			b.failed = true
			s.notes = append(s.notes, fmt.Sprintf("FAILED: round %d lean reader: %s", r, y.err))
		} else {
			lean = append(lean, y.mbps())
		}
		z := repeat(passes, func() sample { return franzRead(b, addr, topic, records) })
		z.round, z.side, z.case_ = r, "meshka", "franz-go reader"
		s.samples = append(s.samples, z)
		if z.err != "" {
			b.failed = true
			s.notes = append(s.notes, fmt.Sprintf("FAILED: round %d franz-go reader: %s", r, z.err))
		} else {
			franz = append(franz, z.mbps())
		}
		b.progress("P5 round %d/%d raw TCP %8.1f MB/s, meshka lean reader %8.1f MB/s, franz-go reader %8.1f MB/s",
			r, b.opts.rounds, x.mbps(), y.mbps(), z.mbps())
	}
	s.rows = []row{
		{id: "P5", what: fmt.Sprintf("MB/s reading a warm %d MiB partition through meshka (lean Fetch reader) ÷ raw loopback TCP", preload>>20),
			unit: "MB/s", direct: raw, meshka: lean, target: "≥ 0.5", check: func(x float64) bool { return x >= 0.5 }},
		{id: "P5 franz-go", what: "the same read by a franz-go consumer (decodes every record) ÷ raw loopback TCP",
			unit: "MB/s", direct: raw, meshka: franz},
	}
	s.rawHead = []string{"elapsed", "bytes MB", "MB/s"}
	s.raw = func(x sample) []string {
		return []string{fmt.Sprintf("%.3f s", x.elapsed.Seconds()), fmt.Sprintf("%.1f", float64(x.bytes)/1e6), fmt.Sprintf("%.1f", x.mbps())}
	}
	s.notes = append(s.notes,
		fmt.Sprintf("Preload: %d MiB of 1 KiB random values in one partition, produced straight upstream; one meshka node with "+
			"cache.partition_max_bytes and node_max_bytes at %d MiB, warmed by one unrecorded reader, serves every timed read from memory. "+
			"Each sample reads the whole partition %d time(s) in a row, each time on a new connection (raw TCP: the same bytes in one stream).",
			preload>>20, int64(cacheBytes)>>20, passes),
		fmt.Sprintf("The direct column is raw loopback TCP: a Go sender writing %d KiB buffers to a Go receiver reading into one %d KiB buffer "+
			"over 127.0.0.1, the same byte count as the preload's record batches, in this process. MB/s counts record-batch bytes delivered "+
			"(Kafka framing excluded; for the franz-go reader, record values) over the time from connecting to the last byte.", rawChunk>>10, rawChunk>>10),
		fmt.Sprintf("The lean reader is a Kafka Fetch v12 client written for this measurement: one fetch in flight, %d KiB per partition "+
			"(franz-go's default), response read into one reused buffer and its batch headers walked to find the next offset and check "+
			"that offsets are contiguous; it does not decode records, so it measures what meshka can serve. The franz-go row is a "+
			"real consumer decoding every record, and is bounded by that decoding on the same 2 cores.", fetchPartMaxBytes>>10),
		"A ratio above 1 means the lean reader through meshka moved bytes faster than this raw pair did: both are single TCP streams "+
			"over loopback whose rates vary by 10-20% between runs here; meshka writes each answer's cached batches with one writev, "+
			"straight from the cache's buffers.",
	)
	return s
}

// repeat runs read n times and adds up its samples; the first error ends
// it.
func repeat(n int, read func() sample) sample {
	var sum sample
	for range n {
		x := read()
		sum.elapsed += x.elapsed
		sum.bytes += x.bytes
		sum.records += x.records
		if x.err != "" {
			sum.err = x.err
			break
		}
	}
	return sum
}

// rawLoopback copies n bytes over a loopback TCP connection in rawChunk
// writes: what the machine's network stack carries with no protocol.
func rawLoopback(n int64) sample {
	x := sample{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer ln.Close()
	sent := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			sent <- err
			return
		}
		defer c.Close()
		buf := make([]byte, rawChunk)
		for left := n; left > 0; {
			w, err := c.Write(buf[:min(left, int64(len(buf)))])
			if err != nil {
				sent <- err
				return
			}
			left -= int64(w)
		}
		sent <- nil
	}()
	start := time.Now()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer c.Close()
	buf := make([]byte, rawChunk)
	var got int64
	for got < n {
		r, err := c.Read(buf)
		got += int64(r)
		if err != nil {
			x.err = fmt.Sprintf("after %d of %d bytes: %v", got, n, err)
			break
		}
	}
	x.elapsed = time.Since(start)
	x.bytes = got
	if err := <-sent; err != nil && x.err == "" {
		x.err = "sender: " + err.Error()
	}
	return x
}

// leanRead reads partition 0 of topic from offset 0 to records with a
// minimal Fetch v12 client, one request in flight.
func leanRead(addr, topic string, count int64) sample {
	x := sample{}
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	fr := kmsg.NewPtrFetchRequest()
	fr.Version = 12
	fr.ReplicaID = -1
	fr.MaxWaitMillis = 500
	fr.MinBytes = 1
	fr.MaxBytes = 50 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = fetchPartMaxBytes
	fp.LogStartOffset = -1
	ft.Partitions = []kmsg.FetchRequestTopicPartition{fp}
	fr.Topics = []kmsg.FetchRequestTopic{ft}
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench-lean"))

	var (
		req, buf []byte
		batches  []records.Batch
		next     int64
		corr     int32
	)
	for next < count {
		corr++
		fr.Topics[0].Partitions[0].FetchOffset = next
		req = formatter.AppendRequest(req[:0], fr, corr)
		if _, err := c.Write(req); err != nil {
			x.err = err.Error()
			return x
		}
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			x.err = fmt.Sprintf("reading response at offset %d: %v", next, err)
			return x
		}
		n := int(binary.BigEndian.Uint32(size[:]))
		if n > 64<<20 {
			x.err = fmt.Sprintf("response of %d bytes", n)
			return x
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(c, buf); err != nil {
			x.err = fmt.Sprintf("reading response at offset %d: %v", next, err)
			return x
		}
		// Response header v1: correlation id, then an empty tag buffer.
		if n < 5 || int32(binary.BigEndian.Uint32(buf)) != corr {
			x.err = "bad response header"
			return x
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = 12
		if err := resp.ReadFrom(buf[5:]); err != nil {
			x.err = "decoding response: " + err.Error()
			return x
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			x.err = "fetch: " + err.Error()
			return x
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			x.err = "response does not hold exactly the partition asked"
			return x
		}
		p := &resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			x.err = fmt.Sprintf("fetch at offset %d: %v", next, err)
			return x
		}
		var rest []byte
		batches, rest, err = records.Split(p.RecordBatches, batches)
		if err != nil {
			x.err = err.Error()
			return x
		}
		for _, bt := range batches {
			if bt.Last < next {
				continue // a batch may start before the offset asked
			}
			if bt.Base > next {
				x.err = fmt.Sprintf("offset gap: expected %d, batch starts at %d", next, bt.Base)
				return x
			}
			next = bt.Next()
			x.bytes += int64(len(bt.Data))
			x.records += bt.Last - bt.Base + 1
		}
		_ = rest // a partial batch at the end is asked again from next
	}
	x.elapsed = time.Since(start)
	return x
}

// franzRead is the same read by a franz-go consumer, as P4's readers.
func franzRead(b *bench, addr, topic string, records int64) sample {
	x := sample{}
	start := time.Now()
	cl, err := kgo.NewClient(clientOpts([]string{addr}, b.opts.debug,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}))...)
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := readAll(ctx, cl, records)
	x.elapsed = time.Since(start)
	x.records, x.bytes = r.next, r.bytes
	if r.err != nil {
		x.err = r.err.Error()
	}
	if errors.Is(r.err, context.DeadlineExceeded) {
		x.err = "timed out: " + x.err
	}
	return x
}
