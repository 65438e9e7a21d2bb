package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	httpmap "github.com/meshka/meshka/mappers/http"
)

const (
	h2Duration = 5 * time.Second
	h2Quick    = time.Second
	h2Workers  = 16  // requests in flight at once, on each side
	h2Payload  = 256 // bytes per record
	h2Topic    = "bench-h2"
)

// runHTTPProduce is H2: records written one per HTTP request (keep-alive,
// h2Workers at once) through a meshka produce route, ÷ records written by
// a franz-go producer straight to upstream, one record per ProduceSync
// call from as many goroutines, acks all on both sides; and the same
// producer through the node's Kafka listener, which parts the HTTP
// mapper's cost from the node's.
func runHTTPProduce(b *bench) section {
	s := section{}
	up, err := startUpstream(b.opts.debug)
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+err.Error())
		return s
	}
	defer up.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = up.createTopic(ctx, h2Topic, 3)
	cancel()
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+err.Error())
		return s
	}
	dur := h2Duration
	if b.opts.quick {
		dur = h2Quick
	}
	per := map[string][]float64{}
	batchRecords = map[string]*batchCount{"direct": {}, "single": {}}
	for r := range b.roundsFor("H2", b.opts.rounds) {
		for _, side := range h2Sides() {
			collectGarbage()
			var x sample
			labelled("H2", side, func() { x = h2Once(b, up, side, r, dur) })
			s.samples = append(s.samples, x)
			if x.err != "" {
				b.failed = true
				b.progress("H2 round %d %s: FAILED: %s", r, side, x.err)
				s.notes = append(s.notes, fmt.Sprintf("FAILED: round %d %s: %s", r, side, x.err))
				continue
			}
			rate := float64(x.records) / x.elapsed.Seconds()
			b.progress("H2 round %d/%d %-8s %9.0f records/s", r, b.opts.rounds, side, rate)
			per[side] = append(per[side], rate)
		}
	}
	over, client := "meshka", "Go's net/http client"
	if len(per["wrk"]) > 0 {
		over, client = "wrk", "wrk (2 threads)"
	}
	s.rows = []row{{
		id: "H2", what: fmt.Sprintf("produce one %d-byte record per request, %d requests at once, acks all: records/s over HTTP (keep-alive, %s) through meshka ÷ franz-go sending one record per Produce request straight to upstream (%d clients, each with one record at a time)", h2Payload, h2Workers, client, h2Workers),
		unit: "records/s", direct: per["single"], meshka: per[over], target: "≥ 0.8", check: func(x float64) bool { return x >= 0.8 },
	}, {
		id: "H2 Go client", what: "the same with Go's net/http client posting from as many goroutines in the bench's own process (which shares the machine's cores with the node and the upstream)",
		unit: "records/s", direct: per["single"], meshka: per["meshka"],
	}, {
		id: "H2 batching", what: fmt.Sprintf("the same runs' records/s over HTTP (Go's client) ÷ one franz-go client straight to upstream, ProduceSync from %d goroutines, which puts what arrives while its requests are in flight into one request (H2's figure before 2026-12-02)", h2Workers),
		unit: "records/s", direct: per["direct"], meshka: per["meshka"],
	}, {
		id: "H2 via listener", what: "the same runs' records/s over HTTP (Go's client) ÷ that batching franz-go client through the node's Kafka listener (direct column): the HTTP mapper against the node's Kafka edge, on the same node and upstream path",
		unit: "records/s", direct: per["listener"], meshka: per["meshka"],
	}, {
		id: "H2 listener", what: "the batching franz-go client through the node's Kafka listener (meshka column) ÷ straight to upstream",
		unit: "records/s", direct: per["direct"], meshka: per["listener"],
	}}
	if len(per["bare"]) > 0 {
		s.rows = append(s.rows, row{
			id: "H2 HTTP alone", what: "wrk the same way against a net/http handler in the bench's process that reads the body and answers 201 with a produce route's JSON, the record going nowhere (side bare) ÷ the single franz-go clients: what one HTTP/1.1 request per record costs here before any produce",
			unit: "records/s", direct: per["single"], meshka: per["bare"],
		})
	}
	s.rawHead = []string{"elapsed", "records", "records/s", "CPU user %", "CPU kernel %", "CPU idle %", "CPU steal %"}
	s.raw = func(x sample) []string {
		cpu := func(k string) string {
			if v, ok := x.extra[k]; ok {
				return fmt.Sprintf("%.0f", v)
			}
			return "—"
		}
		rate := 0.0
		if x.elapsed > 0 {
			rate = float64(x.records) / x.elapsed.Seconds()
		}
		return []string{fmt.Sprintf("%.2f s", x.elapsed.Seconds()), fmt.Sprint(x.records), fmt.Sprintf("%.0f", rate),
			cpu("user"), cpu("kernel"), cpu("idle"), cpu("steal")}
	}
	if ts, tb, to := median(per["single"]), median(per["bare"]), median(per[over]); ts > 0 && tb > 0 && to > 0 {
		// a request's time at h2Workers in flight, as a share of a single
		// franz-go client's produce round trip
		httpOnly, prod := ts/tb, (ts/to)-(ts/tb)
		s.notes = append(s.notes, fmt.Sprintf("What H2 ≥ 0.8 needs, in this run's medians: a request's time over HTTP (%d in flight ÷ records/s) at most 1.25 times a single franz-go client's produce round trip. The HTTP round trip alone (side bare) took %.2f of that round trip, which leaves meshka's produce at most %.2f of a direct client's round trip to the same upstream; it took %.2f (the %s side's time less the bare side's).",
			h2Workers, httpOnly, 1.25-httpOnly, prod, over))
	}
	if split := cpuSplits(s.samples); split != "" {
		s.notes = append(s.notes, "The whole machine's CPU (/proc/stat, both cores, every process) during the timed part of each round, median by side: "+split+". Kernel is system, irq and softirq time: on loopback each side's sockets cost it twice, in the sender's and the receiver's calls.")
	}
	if n := batchRecords["single"]; n.batches > 0 {
		s.notes = append(s.notes, fmt.Sprintf("Records per Produce batch written, counted by a franz-go hook over every round: %.2f for the %d single-record clients (H2's denominator: one record per request, as the issue defines it), %.2f for the one batching client straight to upstream.",
			float64(n.records)/float64(n.batches), h2Workers, float64(batchRecords["direct"].records)/float64(max(batchRecords["direct"].batches, 1))))
	}
	s.notes = append(s.notes,
		fmt.Sprintf("Method: per round a fresh meshka node (an HTTP produce route on the topic, 3 partitions) or a fresh franz-go client; for %s, %d goroutines each send a record and wait for its answer before sending the next: over HTTP, POST with a %d-byte body on a keep-alive connection of Go's net/http client (answered 201 once upstream acknowledged it, acks all); single, %d franz-go clients, a worker each, ProduceSync of one record (acks all); direct, one franz-go client, ProduceSync of one record from every worker (acks all, franz-go's defaults: what workers produce at once goes in one request); listener, that client seeded with a fresh node's Kafka listener. The figure is records acknowledged ÷ elapsed.", dur, h2Workers, h2Payload, h2Workers),
		"What limits it, from a CPU profile of a 2-round run (meshka-bench -only H2 -rounds 2 -cpuprofile, 2026-12-02 13:58 UTC, on d6239d8 with this section's bare side added; go tool pprof -tags gives each side's samples, kfake's goroutines untagged): per record in the bench's process, the single franz-go clients took 32.6 µs; over HTTP with wrk the node took 54 µs, of which net/http's own part 31.6 µs (writing the answer 22.9 µs, nearly all the write syscall that wakes wrk) and the mapper's handler with the mesh producer and the upstream pipe about 22 µs; the bare handler's net/http took 19.7 µs per request, its answer's write 12.5 µs. The same write costs about twice as much when the machine is waiting rather than busy: each answer then wakes a sleeping wrk thread on the other core. So one HTTP round trip per record, in series with the upstream produce round trip, is where the gap is: H2 HTTP alone is the most any produce over HTTP/1.1 could reach here, and the time a request takes at 16 in flight (16 ÷ the rate) is the bare side's plus meshka's produce.",
		"Tried and measured side by side, and not kept: more batches on their way per partition (2, 4 and 8 fell to 16.8k, 13.5k, 11.8k against 19.8k records/s, 2026-12-01); records without a key sent to a partition with no batch on its way (KIP-794's adaptive partitioning) in 6 alternating rounds of one run (wrk 12.5k-16.6k with it, 12.7k-16.1k without, 2026-12-02). Kept: the partition's owner hands a batch straight to its produce pipeline (partition.Writers, about +8% in 6 alternating rounds, 2026-12-02) and a lone record's batch is sent from its caller's goroutine.",
		"Which franz-go side: the issue sets H2's target against a franz-go producer sending one record per request, which one client driven by many goroutines does not do (it puts what arrives while its requests are in flight into the next request: the records-per-batch count above); so H2's denominator is 16 franz-go clients, each with one record at a time, straight to upstream, and the batching client stays beside it (H2 batching), as does the same client through the node's Kafka listener (H2 via listener: both sides cross the same node and the same upstream path).",
	)
	return s
}

func h2Once(b *bench, up *upstream, side string, round int, dur time.Duration) sample {
	x := sample{round: round, side: side}
	payload := bytes.Repeat([]byte("h"), h2Payload)
	var send func(ctx context.Context, worker int) error
	var url string // the produce route's, over HTTP
	switch side {
	case "single":
		// One client per worker, each with one record at a time: every
		// Produce request carries exactly one record.
		var cls []*kgo.Client
		for range h2Workers {
			cl, err := kgo.NewClient(kgo.SeedBrokers(up.addrs()...), kgo.DefaultProduceTopic(h2Topic), kgo.WithHooks(batchRecords["single"]))
			if err != nil {
				x.err = err.Error()
				return x
			}
			defer cl.Close()
			cls = append(cls, cl)
		}
		send = func(ctx context.Context, worker int) error {
			return cls[worker].ProduceSync(ctx, &kgo.Record{Value: payload}).FirstErr()
		}
	case "direct", "listener":
		seeds := up.addrs()
		if side == "listener" {
			n, err := up.startNode(nil)
			if err != nil {
				x.err = err.Error()
				return x
			}
			defer stopNode(b, n)
			seeds = []string{n.Addr().String()}
		}
		opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(h2Topic)}
		if side == "direct" {
			opts = append(opts, kgo.WithHooks(batchRecords["direct"]))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			x.err = err.Error()
			return x
		}
		defer cl.Close()
		send = func(ctx context.Context, _ int) error {
			return cl.ProduceSync(ctx, &kgo.Record{Value: payload}).FirstErr()
		}
	case "bare":
		// HTTP alone: a handler that reads the body and answers as the
		// produce route does, and writes nothing anywhere.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			x.err = err.Error()
			return x
		}
		srv := &http.Server{Handler: http.HandlerFunc(bareProduce), ReadHeaderTimeout: 10 * time.Second}
		served := make(chan struct{})
		go func() {
			defer close(served)
			srv.Serve(ln)
		}()
		defer func() {
			srv.Close()
			<-served
		}()
		url = "http://" + ln.Addr().String() + "/p"
	default: // meshka, wrk
		n, err := up.startNode(func(cfg *config.Config) {
			cfg.HTTP.Listen = "127.0.0.1:0"
			cfg.HTTP.Routes = []config.HTTPRoute{{Method: "POST", Path: "/p", Topic: h2Topic, Capability: config.CapProduce}}
		})
		if err != nil {
			x.err = err.Error()
			return x
		}
		defer stopNode(b, n)
		bd, ok := n.Binding("http")
		if !ok {
			x.err = "meshka serves no HTTP"
			return x
		}
		url = "http://" + bd.(*httpmap.Server).Addr().String() + "/p"
	}
	if url != "" {
		var closeIdle func()
		send, closeIdle = httpSend(url)
		defer closeIdle()
	}
	if side == "wrk" || side == "bare" {
		return h2Wrk(x, send, url, dur)
	}
	// warm up: connections, metadata, the partitions' actors
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	for w := range h2Workers {
		if err := send(wctx, w); err != nil {
			wcancel()
			x.err = "warm-up: " + err.Error()
			return x
		}
	}
	wcancel()
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var done atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	cpu0 := readCPU()
	start := time.Now()
	for w := range h2Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := send(ctx, w); err != nil {
					if ctx.Err() == nil {
						failed.Store(err.Error())
					}
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	x.elapsed = time.Since(start)
	cpuExtra(&x, cpu0, readCPU())
	x.records = done.Load()
	x.bytes = x.records * h2Payload
	if f, ok := failed.Load().(string); ok {
		x.err = f
	}
	return x
}

// httpSend posts one record per call over a keep-alive connection of
// Go's net/http client and wants 201; closeIdle closes its connections.
func httpSend(url string) (send func(context.Context, int) error, closeIdle func()) {
	payload := bytes.Repeat([]byte("h"), h2Payload)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: h2Workers}}
	return func(ctx context.Context, _ int) error {
		req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("answered %d", resp.StatusCode)
		}
		return nil
	}, client.CloseIdleConnections
}

// bareOffset numbers the bare side's answers.
var bareOffset atomic.Int64

// bareProduce is the bare side's handler: it reads the body and answers
// 201 with the JSON a produce route answers, and the record goes nowhere.
func bareProduce(w http.ResponseWriter, r *http.Request) {
	if _, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20)); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
		Timestamp int64  `json:"timestamp"`
	}{h2Topic, 0, bareOffset.Add(1) - 1, time.Now().UnixMilli()})
}

// cpuSplits is the median CPU shares by side, in side order.
func cpuSplits(samples []sample) string {
	var order []string
	by := map[string][][4]float64{}
	for _, x := range samples {
		if _, ok := x.extra["user"]; !ok || x.err != "" {
			continue
		}
		if _, seen := by[x.side]; !seen {
			order = append(order, x.side)
		}
		by[x.side] = append(by[x.side], [4]float64{x.extra["user"], x.extra["kernel"], x.extra["idle"], x.extra["steal"]})
	}
	var parts []string
	for _, side := range order {
		var m [4]float64
		for k := range m {
			var v []float64
			for _, r := range by[side] {
				v = append(v, r[k])
			}
			m[k] = median(v)
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%% user, %.0f%% kernel, %.0f%% idle, %.0f%% steal", side, m[0], m[1], m[2], m[3]))
	}
	return strings.Join(parts, "; ")
}

// cpuExtra keeps the machine's CPU shares over a round in x's extras.
func cpuExtra(x *sample, a, b cpuTimes) {
	user, kernel, idle, steal, ok := b.sharesSince(a)
	if !ok {
		return
	}
	if x.extra == nil {
		x.extra = map[string]float64{}
	}
	x.extra["user"], x.extra["kernel"], x.extra["idle"], x.extra["steal"] = user, kernel, idle, steal
}

// batchCount counts the records and batches a franz-go client wrote (a
// produce hook), to say how many records its requests carried.
type batchCount struct{ records, batches int64 }

// batchRecords are H2's counts by side, over every round.
var batchRecords map[string]*batchCount

func (c *batchCount) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	atomic.AddInt64(&c.records, int64(m.NumRecords))
	atomic.AddInt64(&c.batches, 1)
}

// h2Sides are H2's sides: over HTTP with wrk (Debian's wrk, a C load
// generator) when it is installed, and always with Go's net/http client.
func h2Sides() []string {
	sides := []string{"direct", "single", "listener", "meshka"}
	if _, err := exec.LookPath("wrk"); err == nil {
		sides = append(sides, "wrk", "bare")
	}
	return sides
}

// h2Wrk warms the node up with send, then has wrk post one record per
// request for dur on h2Workers keep-alive connections (2 threads, the
// machine's cores) and counts the requests answered 2xx.
func h2Wrk(x sample, send func(context.Context, int) error, url string, dur time.Duration) sample {
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	for w := range h2Workers {
		if err := send(wctx, w); err != nil {
			x.err = "warm-up: " + err.Error()
			return x
		}
	}
	script, err := os.CreateTemp("", "meshka-h2-*.lua")
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer os.Remove(script.Name())
	fmt.Fprintf(script, "wrk.method = \"POST\"\nwrk.body = string.rep(\"h\", %d)\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n", h2Payload)
	script.Close()
	secs := max(int(dur.Seconds()), 1)
	cpu0 := readCPU()
	out, err := exec.Command("wrk", "-t2", fmt.Sprintf("-c%d", h2Workers), fmt.Sprintf("-d%ds", secs), "-s", script.Name(), url).CombinedOutput()
	cpuExtra(&x, cpu0, readCPU())
	if err != nil {
		x.err = fmt.Sprintf("wrk: %v: %s", err, out)
		return x
	}
	var total int64
	var took string
	m := regexp.MustCompile(`(\d+) requests in ([0-9.]+[a-z]+)`).FindSubmatch(out)
	if m == nil {
		x.err = "wrk's output has no request count: " + string(out)
		return x
	}
	total, _ = strconv.ParseInt(string(m[1]), 10, 64)
	took = string(m[2])
	elapsed, err := time.ParseDuration(took)
	if err != nil {
		x.err = "wrk's duration " + took + ": " + err.Error()
		return x
	}
	if bad := regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`).FindSubmatch(out); bad != nil {
		x.err = "wrk: " + string(bad[1]) + " requests not answered 2xx"
		return x
	}
	if strings.Contains(string(out), "Socket errors") {
		x.err = "wrk: " + strings.TrimSpace(string(out))
		return x
	}
	x.records, x.elapsed, x.bytes = total, elapsed, total*h2Payload
	return x
}
