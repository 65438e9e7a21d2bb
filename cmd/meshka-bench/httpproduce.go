package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
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
// call from as many goroutines, acks all on both sides.
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
	for r := 1; r <= b.opts.rounds; r++ {
		for _, side := range []string{"direct", "meshka"} {
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
			b.progress("H2 round %d/%d %-6s %9.0f records/s", r, b.opts.rounds, side, rate)
			per[side] = append(per[side], rate)
		}
	}
	s.rows = []row{{
		id: "H2", what: fmt.Sprintf("produce one %d-byte record per request, %d requests at once, acks all: records/s over HTTP (keep-alive) through meshka ÷ a franz-go producer straight to upstream, one record per ProduceSync call from %d goroutines", h2Payload, h2Workers, h2Workers),
		unit: "records/s", direct: per["direct"], meshka: per["meshka"], target: "≥ 0.8", check: func(x float64) bool { return x >= 0.8 },
	}}
	s.notes = append(s.notes,
		fmt.Sprintf("Method: per round a fresh meshka node (an HTTP produce route on the topic, 3 partitions) or a fresh franz-go client; for %s, %d goroutines each send a record and wait for its answer before sending the next: over HTTP, POST with a %d-byte body on a keep-alive connection of Go's net/http client (answered 201 once upstream acknowledged it, acks all); direct, ProduceSync of one record (acks all, franz-go's defaults: what goroutines produce at once goes in one request). The figure is records acknowledged ÷ elapsed.", dur, h2Workers, h2Payload),
		"What limits it: the client, meshka and kfake share the machine's 2 cores; over HTTP each record is also an HTTP request parsed and answered, and a record handed to the mesh's producer, which batches what the requests in flight give it (16 at most here), as franz-go batches what its goroutines give it.",
		"A CPU profile of a 3-round run (meshka-bench -only H2 -cpuprofile) at 20:37 on 2026-12-01 had the process busy 124% of the 200% the 2 cores give: the HTTP side is bound by each request's round trip (16 in flight ÷ its rate: about 0.75 ms each, against 0.2 ms for franz-go's), not by CPU. The mesh's producer keeps one batch on its way per partition and answers each record when its batch is acknowledged; where the round trip goes (the partition actor's pipeline, the mesh producer's lanes) is not yet measured apart.")
	return s
}

func h2Once(b *bench, up *upstream, side string, round int, dur time.Duration) sample {
	x := sample{round: round, side: side}
	payload := bytes.Repeat([]byte("h"), h2Payload)
	var send func(ctx context.Context) error
	switch side {
	case "direct":
		cl, err := kgo.NewClient(kgo.SeedBrokers(up.addrs()...), kgo.DefaultProduceTopic(h2Topic))
		if err != nil {
			x.err = err.Error()
			return x
		}
		defer cl.Close()
		send = func(ctx context.Context) error {
			return cl.ProduceSync(ctx, &kgo.Record{Value: payload}).FirstErr()
		}
	default:
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
		url := "http://" + bd.(*httpmap.Server).Addr().String() + "/p"
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: h2Workers}}
		defer client.CloseIdleConnections()
		send = func(ctx context.Context) error {
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
	// warm up: connections, metadata, the partitions' actors
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	for range h2Workers {
		if err := send(wctx); err != nil {
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
	for range h2Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := send(ctx); err != nil {
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
