package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
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
	if n := batchRecords["single"]; n.batches > 0 {
		s.notes = append(s.notes, fmt.Sprintf("Records per Produce batch written, counted by a franz-go hook over every round: %.2f for the %d single-record clients (H2's denominator: one record per request, as the issue defines it), %.2f for the one batching client straight to upstream.",
			float64(n.records)/float64(n.batches), h2Workers, float64(batchRecords["direct"].records)/float64(max(batchRecords["direct"].batches, 1))))
	}
	s.notes = append(s.notes,
		fmt.Sprintf("Method: per round a fresh meshka node (an HTTP produce route on the topic, 3 partitions) or a fresh franz-go client; for %s, %d goroutines each send a record and wait for its answer before sending the next: over HTTP, POST with a %d-byte body on a keep-alive connection of Go's net/http client (answered 201 once upstream acknowledged it, acks all); single, %d franz-go clients, a worker each, ProduceSync of one record (acks all); direct, one franz-go client, ProduceSync of one record from every worker (acks all, franz-go's defaults: what workers produce at once goes in one request); listener, that client seeded with a fresh node's Kafka listener. The figure is records acknowledged ÷ elapsed.", dur, h2Workers, h2Payload, h2Workers),
		"What limits it: the client, meshka and kfake share the machine's 2 cores, and one HTTP request per record costs far more CPU than a record in franz-go's batches. A CPU profile of a 3-round run (meshka-bench -only H2 -cpuprofile, with the listener side, on 2026-12-01 at 23:01 UTC, the machine shared with other work) had, per record and in this process (kfake's goroutines, untagged, left out): direct 11.9 µs, listener 32.2 µs, over HTTP 60.3 µs. Of the HTTP side's: the bench's Go net/http client 27 µs (its connection's read and write loops and the request); net/http's server 23 µs, of which reading the request 4.7 µs, writing the answer 9.3 µs (a write syscall each) and the mapper's handler 5.0 µs (mesh.Producer.ProduceSync 1.6 µs, the JSON answer 0.7, reading the body 0.7, headers 0.6); the mesh producer's batch through the partition actor to the upstream connection and back 7.4 µs. So the mapper's own work is a small part: nearly all of it is HTTP's, on both ends, and in a deployment the client's end is on other machines.",
		"What limits it besides CPU: the mesh producer keeps one batch on its way per partition, and records without a key all go to the topic's one sticky partition, so every request's record waits for the batch on its way and then for its own. A trial run with the producer's batch write timed (a temporary patch) had the lane busy all the time: 13,436 batches of 6.9 records in a 5 s round, 365 µs each, where the same producer driven by 16 goroutines in process (no HTTP) wrote batches in 105-162 µs; so the round trip of a request (16 in flight ÷ the rate: about 0.9 ms) is mostly waiting in a busy machine's run queues. A trial that moved the sticky partition on each time a batch left (as Kafka's sticky partitioner does; not made: it changes where records without a key go) gave 18.4-19.6k records/s against 16.5-17.8k in alternating rounds of one run, so it is not where most of the gap is.",
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
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: h2Workers}}
		defer client.CloseIdleConnections()
		send = func(ctx context.Context, _ int) error {
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
		}
	}
	if side == "wrk" {
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
	x.records = done.Load()
	x.bytes = x.records * h2Payload
	if f, ok := failed.Load().(string); ok {
		x.err = f
	}
	return x
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
		sides = append(sides, "wrk")
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
	out, err := exec.Command("wrk", "-t2", fmt.Sprintf("-c%d", h2Workers), fmt.Sprintf("-d%ds", secs), "-s", script.Name(), url).CombinedOutput()
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
