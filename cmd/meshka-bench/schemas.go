package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/node"
	"github.com/meshka/meshka/schema/wire"
)

const (
	g1Duration      = 5 * time.Second
	g1DurationQuick = 2 * time.Second
	g1Subject       = "bench-g1-value"
	g2Duration      = 3 * time.Second
	g2DurationQuick = time.Second
	g2Workers       = 4 // goroutines sharing one registry client
	// g1Schema is the Avro schema of G1's values: a reading of a few
	// typed fields and tags, and an opaque payload that brings each value
	// to g1ValueBytes.
	g1Schema = `{"type":"record","name":"Reading","fields":[` +
		`{"name":"id","type":"long"},{"name":"at","type":"long"},{"name":"host","type":"string"},` +
		`{"name":"celsius","type":"double"},{"name":"ok","type":"boolean"},` +
		`{"name":"tags","type":{"type":"array","items":"string"}},{"name":"payload","type":"bytes"}]}`
	g1ValueBytes = 1024
	g1Values     = 1024 // distinct values, produced in turn
)

// runSchemas is G1 and G2. G1: a franz-go producer writing 1 KiB Avro
// values (acks all) through a node whose topics rule checks them against
// the built-in registry ÷ the same through a node without the rule. G2:
// schema lookups by id per second from one registry client against the
// built-in registry's HTTP API.
func runSchemas(b *bench) section {
	s := section{}
	up, err := startUpstream(b.opts.debug)
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED to start the upstream: "+err.Error())
		return s
	}
	defer up.close()
	fail := func(what string, err error) section {
		b.failed = true
		s.notes = append(s.notes, fmt.Sprintf("FAILED: %s: %v", what, err))
		return s
	}
	// A node with the registry registers the schema; the later nodes read
	// it from the registry's topic.
	reg, err := up.startNode(func(c *config.Config) { registryOn(c) })
	if err != nil {
		return fail("start meshka", err)
	}
	rcl, err := sr.NewClient(sr.URLs("http://" + httpAddr(reg)))
	if err != nil {
		stopNode(b, reg)
		return fail("registry client", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	ss, err := rcl.CreateSchema(ctx, g1Subject, sr.Schema{Schema: g1Schema})
	cancel()
	if err != nil {
		stopNode(b, reg)
		return fail("register the schema", err)
	}
	g2 := g2Runs(b, rcl, ss.ID, &s)
	if err := stopNode(b, reg); err != nil {
		b.progress("meshka shutdown: %v", err)
	}

	values := g1Make(ss.ID)
	dur := g1Duration
	if b.opts.quick {
		dur = g1DurationQuick
	}
	warm := dur / 2
	b.progress("G1 warm-up (%s per side, not recorded)", warm)
	for _, side := range []string{"no rule", "rule"} {
		collectGarbage()
		if x := g1Once(b, up, values, side, 0, warm); x.err != "" {
			b.progress("G1 warm-up %s: %s", side, x.err)
		}
	}
	per := map[string][]float64{}
	rounds := b.opts.produceRounds()
	for r := range b.roundsFor("G1", rounds) {
		for _, side := range []string{"no rule", "rule"} {
			collectGarbage()
			x := g1Once(b, up, values, side, r, dur)
			s.samples = append(s.samples, x)
			if x.err != "" {
				b.failed = true
				b.progress("G1 round %d %s: FAILED: %s", r, side, x.err)
				s.notes = append(s.notes, fmt.Sprintf("FAILED: G1 round %d %s: %s", r, side, x.err))
				continue
			}
			b.progress("G1 round %d/%d %-7s %7.1f MB/s (%d records acked in %s)", r, rounds, side, x.mbps(), x.records, dur)
			per[side] = append(per[side], x.mbps())
		}
	}
	s.rows = []row{{
		id:   "G1",
		what: fmt.Sprintf("produce %d-byte Avro values (1 producer, acks all, %d partitions, %s per run) through a node whose topics rule checks every value against the built-in registry ÷ through a node without the rule", g1ValueBytes, producePartitions, dur),
		unit: "MB/s", direct: per["no rule"], meshka: per["rule"], target: "≥ 0.8", check: func(x float64) bool { return x >= 0.8 },
	}, {
		id:   "G2",
		what: fmt.Sprintf("schema lookups by id (franz-go's registry client, SchemaByID, %d goroutines sharing one client and its keep-alive connections) against the built-in registry's HTTP API; the registry answers from the node's replica", g2Workers),
		unit: "lookups/s", meshka: g2,
		result: func(_, m float64) (float64, string) { return m, fmt.Sprintf("%.0f lookups/s", m) },
	}}
	s.notes = append(s.notes,
		fmt.Sprintf("G1 method: per run a fresh %d-partition topic and a fresh node with the built-in registry (http.schema_registry), with or without a topics rule (value: avro, subject %s); before the timed window each side produces one valid record, and the rule side one invalid record, which must fail with INVALID_RECORD. Values: %d distinct %d-byte Avro records (a long id and time, a host name, a double, a boolean, 8 tags and random bytes) in Confluent's wire format, produced in turn; franz-go's defaults (idempotent, acks all, batches as it makes them) except linger 0, as P1. MB/s counts the values acknowledged within the window. One unrecorded half-length run of each side first.", producePartitions, g1Subject, g1Values, g1ValueBytes),
		"What limits G1: the check runs on the connection's read goroutine (decoding every record of each batch and walking each value against its schema), in the same 2 cores as the producer, kfake and the node's forwarding; the figure is how much of the node's produce rate is left with it. go test -bench CheckBatch ./schema/validate/ measures the check alone.",
		fmt.Sprintf("What limits G2: every lookup is one HTTP request and answer (GET /schemas/ids/{id}, the schema's JSON) on loopback, client and node sharing 2 cores; franz-go's client does not cache, so each call reaches the node, which answers from its in-memory replica of the registry. %s per run.", g2Dur(b)),
		pairedRatios(g1Renamed(s.samples)),
	)
	return s
}

// registryOn serves HTTP with the built-in schema registry.
func registryOn(c *config.Config) {
	c.HTTP.Listen = "127.0.0.1:0"
	c.HTTP.SchemaRegistry.Enabled = true
}

// httpAddr is the address of a node's HTTP listener.
func httpAddr(n *node.Node) string {
	if b, ok := n.Binding("http"); ok {
		if a, ok := b.(interface{ Addr() net.Addr }); ok {
			return a.Addr().String()
		}
	}
	return "127.0.0.1:0" // no HTTP listener: the lookups fail
}

func g2Dur(b *bench) time.Duration {
	if b.opts.quick {
		return g2DurationQuick
	}
	return g2Duration
}

// g2Runs runs G2's rounds on the registry client and returns their
// lookups per second.
func g2Runs(b *bench, rcl *sr.Client, id int, s *section) []float64 {
	var out []float64
	dur := g2Dur(b)
	for r := range b.roundsFor("G2", b.opts.rounds) {
		collectGarbage()
		x := sample{round: r, side: "registry"}
		ctx, cancel := context.WithTimeout(context.Background(), dur)
		var n atomic.Int64
		var errMu sync.Mutex
		var firstErr error
		var wg sync.WaitGroup
		start := time.Now()
		for range g2Workers {
			wg.Go(func() {
				for ctx.Err() == nil {
					_, err := rcl.SchemaByID(ctx, id)
					if err != nil {
						if ctx.Err() == nil {
							errMu.Lock()
							firstErr = cmp(firstErr, err)
							errMu.Unlock()
						}
						continue
					}
					n.Add(1)
				}
			})
		}
		wg.Wait()
		cancel()
		x.elapsed, x.records = time.Since(start), n.Load()
		if firstErr != nil {
			x.err = firstErr.Error()
			b.failed = true
			s.notes = append(s.notes, fmt.Sprintf("FAILED: G2 round %d: %v", r, firstErr))
		}
		s.samples = append(s.samples, x)
		rate := float64(x.records) / x.elapsed.Seconds()
		b.progress("G2 round %d/%d %9.0f lookups/s", r, b.opts.rounds, rate)
		out = append(out, rate)
	}
	return out
}

func cmp(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// g1Renamed is G1's samples with the no-rule side as direct and the rule
// side as meshka, for pairedRatios.
func g1Renamed(samples []sample) []sample {
	var out []sample
	for _, x := range samples {
		switch x.side {
		case "no rule":
			x.side = "direct"
		case "rule":
			x.side = "meshka"
		default:
			continue
		}
		out = append(out, x)
	}
	return out
}

// g1Make builds G1's values, each g1ValueBytes long, under schema id.
func g1Make(id int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, g1Values)
	for i := range out {
		b := wire.Append(nil, uint32(id), nil)
		b = binary.AppendVarint(b, int64(i))
		b = binary.AppendVarint(b, time.Now().UnixMilli())
		host := fmt.Sprintf("edge-%03d.example.net", i%200)
		b = binary.AppendVarint(b, int64(len(host)))
		b = append(b, host...)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(15+rng.Float64()*20))
		b = append(b, 1)
		b = binary.AppendVarint(b, 8)
		for t := range 8 {
			tag := fmt.Sprintf("tag-%d-%d", t, i%7)
			b = binary.AppendVarint(b, int64(len(tag)))
			b = append(b, tag...)
		}
		b = binary.AppendVarint(b, 0) // end of the array
		n := g1ValueBytes - len(b) - 2
		b = binary.AppendVarint(b, int64(n))
		for range n {
			b = append(b, byte(rng.Uint32()))
		}
		out[i] = b
	}
	return out
}

// g1Once runs one side of one G1 round: side "rule" through a node with
// the topics rule, "no rule" through one without.
func g1Once(b *bench, up *upstream, values [][]byte, side string, round int, dur time.Duration) sample {
	x := sample{round: round, side: side}
	topic, drop, err := produceTopic(b, up, "G1", round, map[string]string{"rule": "rule", "no rule": "norule"}[side])
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer drop()
	n, err := up.startNode(func(c *config.Config) {
		registryOn(c)
		if side == "rule" {
			c.Topics = []config.TopicRule{{Prefix: "bench-g1-", ValidateProduce: true,
				Value: &config.FormatSpec{Format: "avro", Subject: g1Subject, SchemaID: "record"}}}
		}
	})
	if err != nil {
		x.err = "start meshka: " + err.Error()
		return x
	}
	defer func() {
		if err := stopNode(b, n); err != nil {
			b.progress("meshka shutdown: %v", err)
		}
	}()
	cl, err := kgo.NewClient(clientOpts([]string{n.Addr().String()}, b.opts.debug, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))...)
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer cl.Close()
	// The rule must be on (and the registry read) before the window.
	pctx, pcancel := context.WithTimeout(context.Background(), 20*time.Second)
	err = cl.ProduceSync(pctx, &kgo.Record{Value: values[0]}).FirstErr()
	if err == nil && side == "rule" {
		if err = cl.ProduceSync(pctx, &kgo.Record{Value: []byte("not avro")}).FirstErr(); errors.Is(err, kerr.InvalidRecord) {
			err = nil
		} else {
			err = fmt.Errorf("an invalid record: %v, want INVALID_RECORD", err)
		}
	}
	pcancel()
	if err != nil {
		x.err = err.Error()
		return x
	}

	x.elapsed, x.records, x.bytes, x.err = produceFor(cl, dur, func(i int64) []byte { return values[i%int64(len(values))] }, nil)
	return x
}
