// Command meshka-bench measures meshka against its upstream: every
// measurement runs the same franz-go workload straight to an in-process
// kfake cluster and through a meshka node in front of it, alternating
// direct and meshka runs so machine drift cancels out, and writes a
// markdown report (BENCHMARKS.md via `make bench`).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"time"
)

// options are the command-line flags.
type options struct {
	out    string
	quick  bool
	rounds int
	only   []string // measurement ids; empty means all
	debug  bool
	// cpuProfile and memProfile, when set, receive pprof profiles of the
	// whole run (client, meshka and kfake share the process).
	cpuProfile, memProfile string
	// execTrace, when set, receives a runtime/trace execution trace of
	// the whole run (go tool trace): where goroutines wait, not only
	// where they burn CPU.
	execTrace string
	// merge, with only, keeps the sections of the existing report that
	// were not measured again.
	merge bool
	// note is a sentence about the run (say, that the machine was
	// shared) for the Machine section, or its re-run line with merge.
	note string
}

// measurement is one independently selectable benchmark. A measurement
// may produce several report rows (fan-out yields P3 and P4 from the same
// runs, so either id selects it).
type measurement struct {
	ids   []string
	title string
	run   func(b *bench) section
	// order places the section in the report, which follows the ids;
	// the run order is the slice's.
	order int
	// need and needQuick estimate the section's mandatory part, default
	// and -quick: its setup, the first round of each of its loops and its
	// teardown. They are what a default and a -quick run of 2026-12-02 on
	// the shared 2-core machine took (the progress log prints each
	// section's at its end) and about 15% more, rounded up to a second;
	// the micro-benchmarks' more, as they compile their packages' tests.
	// The time budget keeps them for the sections still to run (see
	// budget.go).
	need, needQuick time.Duration
}

// estimate is m's mandatory part in a default or -quick run.
func (m measurement) estimate(quick bool) time.Duration {
	if quick {
		return m.needQuick
	}
	return m.need
}

// measurements run in this order: P2 takes its rate from P1; P6 measures
// memory before fan-out's thousand readers have grown the heap; fan-out
// runs last because its N=1000 case fits itself to the time left.
var measurements = []measurement{
	{ids: []string{"P1"}, title: "P1 produce throughput", run: runProduce, order: 1, need: 19 * time.Second, needQuick: 8 * time.Second},
	{ids: []string{"P2"}, title: "P2 produce latency at a fixed rate", run: runLatency, order: 2, need: 28 * time.Second, needQuick: 8 * time.Second},
	{ids: []string{"P4_1"}, title: "P4₁ one reader catching up on a cold partition", run: runCatchup, order: 4, need: 5 * time.Second, needQuick: 1 * time.Second},
	{ids: []string{"P4_1T"}, title: "P4₁ₜ one reader tailing a partition", run: runTail, order: 5, need: 12 * time.Second, needQuick: 3 * time.Second},
	{ids: []string{"P5"}, title: "P5 cache serving vs raw loopback TCP", run: runCache, order: 6, need: 4 * time.Second, needQuick: 1 * time.Second},
	{ids: []string{"P6"}, title: "P6 memory per idle connection", run: runConns, order: 7, need: 5 * time.Second, needQuick: 5 * time.Second},
	{ids: []string{"P7"}, title: "P7 group rebalance after a member leaves", run: runRebalance, order: 8, need: 1 * time.Second, needQuick: 1 * time.Second},
	{ids: []string{"R1", "R2"}, title: "R1/R2 a normal producer and consumer while hostile clients hold connections", run: runAttack, order: 9, need: 14 * time.Second, needQuick: 7 * time.Second},
	{ids: []string{"C1", "C2", "C3"}, title: "C1-C3 three meshka nodes: produce, latency, fan-out", run: runCluster, order: 10, need: 44 * time.Second, needQuick: 27 * time.Second},
	{ids: []string{"C4"}, title: "C4 a reader on another node than the partition's owner, through the mesh", run: runMeshRead, order: 11, need: 2 * time.Second, needQuick: 2 * time.Second},
	{ids: []string{"C5", "C6"}, title: "C5/C6 failover: a node killed, a node leaving", run: runFailover, order: 12, need: 38 * time.Second, needQuick: 38 * time.Second},
	{ids: []string{"A1", "A2", "A3"}, title: "A1-A3 the records API (package mesh): subscribers, a subscriber on another node, the Producer", run: runAPI, order: 13, need: 40 * time.Second, needQuick: 27 * time.Second},
	{ids: []string{"S1", "S2", "S3"}, title: "S1-S3 security: TLS produce, SASL_SSL SCRAM connections, memory per idle TLS connection", run: runSecurity, order: 14, need: 48 * time.Second, needQuick: 52 * time.Second},
	{ids: []string{"M1"}, title: "M1 MQTT fan-out: one QoS 0 publisher to 100 subscribers, meshka vs mosquitto", run: runMQTTFanout, order: 15, need: 8 * time.Second, needQuick: 3 * time.Second},
	{ids: []string{"M2"}, title: "M2 MQTT QoS 1 latency at 1,000 messages/s, meshka vs mosquitto", run: runMQTTLatency, order: 16, need: 15 * time.Second, needQuick: 6 * time.Second},
	{ids: []string{"M3"}, title: "M3 memory per idle MQTT connection, meshka and mosquitto", run: runMQTTConns, order: 17, need: 16 * time.Second, needQuick: 5 * time.Second},
	{ids: []string{"M4"}, title: "M4 MQTT subscribers of one topic: upstream bytes vs one Kafka reader", run: runMQTTUpstream, order: 18, need: 16 * time.Second, needQuick: 3 * time.Second},
	{ids: []string{"H1"}, title: "H1 SSE clients of one topic: memory per client, and upstream bytes vs one Kafka reader", run: runHTTPStream, order: 19, need: 23 * time.Second, needQuick: 4 * time.Second},
	{ids: []string{"H3"}, title: "H3 SSE latency at 1,000 records/s: produce → receipt in a browser's EventSource", run: runHTTPLatency, order: 21, need: 7 * time.Second, needQuick: 3 * time.Second},
	{ids: []string{"H2"}, title: "H2 produce over HTTP, one record per request", run: runHTTPProduce, order: 20, need: 31 * time.Second, needQuick: 6 * time.Second},
	{ids: []string{"G1", "G2"}, title: "G1/G2 schemas: produce through a node checking Avro values, registry lookups by id", run: runSchemas, order: 22, need: 24 * time.Second, needQuick: 10 * time.Second},
	{ids: []string{"MICRO"}, title: "Micro-benchmarks", run: runMicro, order: 23, need: 35 * time.Second, needQuick: 6 * time.Second},
	{ids: []string{"P3", "P4"}, title: "P3/P4 fan-out: upstream bytes and delivered throughput", run: runFanout, order: 3, need: 14 * time.Second, needQuick: 6 * time.Second},
}

func main() {
	switch os.Getenv(childEnv) {
	case "conns":
		os.Exit(runConnChild())
	case "node":
		os.Exit(runNodeChild())
	}
	os.Exit(run())
}

func run() int {
	var o options
	var only string
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "write the markdown report to `FILE`")
	flag.BoolVar(&o.quick, "quick", false, "shorter runs and one round of each, for a smoke check (the whole run 2.5-3 min on 2 cores: its 75 s budget cannot hold even every measurement's first round)")
	flag.IntVar(&o.rounds, "rounds", 3, "direct/meshka A/B pairs per measurement")
	flag.StringVar(&only, "only", "", "comma `LIST` of measurement ids to run: P1, P2, P3, P4, P4_1 (one reader catching up), P4_1t (one reader tailing), P5, P6, P7, R1 (or R2: hostile clients), C1 (or C2, C3: three nodes), C4 (reads across nodes), A1 (or A2, A3: the records API), C5 (or C6: failover), S1 (or S2, S3: security), M1, M2, M3, M4 (MQTT; M1-M3 need mosquitto), H1 (SSE clients: memory, upstream bytes), H2 (produce over HTTP), H3 (SSE latency; headless Chromium if installed), G1 (or G2: schemas: produce through a node checking Avro values, registry lookups), micro; "+
		"P3 and P4 come from the same runs, so either runs both; empty runs all")
	flag.BoolVar(&o.debug, "debug", false, "log meshka at debug level and franz-go clients at warn level to stderr")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to `FILE`")
	flag.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile of the whole run to `FILE`")
	flag.BoolVar(&o.merge, "merge", false, "with -only: put the measurements run into the existing report (-out), keeping its other sections as they were measured")
	flag.StringVar(&o.note, "note", "", "add `TEXT` about the run (e.g. that the machine was shared with other work) to the report's Machine section, or to its line on the sections measured again with -merge")
	flag.StringVar(&o.execTrace, "trace", "", "write an execution trace of the whole run to `FILE` (large: use with -only and few -rounds)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "meshka-bench: unexpected arguments %q\n", flag.Args())
		return 2
	}
	if o.rounds < 1 {
		fmt.Fprintln(os.Stderr, "meshka-bench: -rounds must be at least 1")
		return 2
	}
	known := map[string]bool{}
	for _, m := range measurements {
		for _, id := range m.ids {
			known[id] = true
		}
	}
	for _, id := range strings.Split(only, ",") {
		id = strings.ToUpper(strings.TrimSpace(id))
		if id == "" {
			continue
		}
		if !known[id] {
			fmt.Fprintf(os.Stderr, "meshka-bench: unknown measurement id %q (known: P1 … P7, P4_1, P4_1t, R1, R2, C1 … C6, A1 … A3, S1 … S3, M1 … M4, H1 … H3, micro)\n", id)
			return 2
		}
		o.only = append(o.only, id)
	}

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "meshka-bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "meshka-bench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if o.execTrace != "" {
		f, err := os.Create(o.execTrace)
		if err != nil {
			fmt.Fprintf(os.Stderr, "meshka-bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			fmt.Fprintf(os.Stderr, "meshka-bench: %v\n", err)
			return 1
		}
		defer trace.Stop()
	}
	if o.memProfile != "" {
		defer func() {
			if err := writeAllocProfile(o.memProfile); err != nil {
				fmt.Fprintf(os.Stderr, "meshka-bench: %v\n", err)
			}
		}()
	}

	b := newBench(o)
	b.progress("machine: %s", b.machine.summary())
	rep := report{machine: b.machine, opts: o, budget: b.deadline.Sub(b.start)}
	var plan []measurement
	for _, m := range measurements {
		if len(o.only) > 0 && !slices.ContainsFunc(m.ids, func(id string) bool { return slices.Contains(o.only, id) }) {
			continue
		}
		plan = append(plan, m)
	}
	for i, m := range plan {
		var later []time.Duration
		for _, l := range plan[i+1:] {
			later = append(later, l.estimate(o.quick))
		}
		b.progress("== %s", m.title)
		b.startSection(m, later)
		start, cuts := time.Now(), b.shutdownCuts
		load, pressure := loadAvg(), cpuPressure()
		s := m.run(b)
		s.notes = append(s.notes, b.sec.notes...)
		s.cuts = b.sec.cuts
		s.notes = append(s.notes, fmt.Sprintf("Machine load during this measurement: load average (1 min) %s at its start, %s at its end; "+
			"CPU pressure (share of the last minute some task waited for a CPU) %s at its start, %s at its end.",
			load, loadAvg(), pressure, cpuPressure()))
		if c := b.shutdownCuts - cuts; c > 0 {
			s.notes = append(s.notes, fmt.Sprintf("After the measured window, %d meshka node shutdown(s) did not finish within %s and had their connections cut: "+
				"connections whose clients had already closed still had requests in progress (at 2fdf5b7, a fetch long-polling for franz-go's default "+
				"5 s max wait kept running after its client left). This does not affect the figures.",
				c, shutdownGrace))
		}
		s.title, s.order = m.title, m.order
		s.took = time.Since(start)
		rep.sections = append(rep.sections, s)
		b.progress("== %s done in %s (mandatory part %s, estimated %s; optional rounds %s)", m.title, s.took.Round(time.Second),
			b.sec.mandatory().Round(100*time.Millisecond), b.sec.need, b.sec.optional.Round(100*time.Millisecond))
	}
	slices.SortStableFunc(rep.sections, func(a, b section) int { return a.order - b.order })
	rep.took = time.Since(b.start)
	rep.endLoad, rep.endPressure = loadAvg(), cpuPressure()
	md := rep.markdown()
	if o.merge && len(o.only) > 0 {
		if old, err := os.ReadFile(o.out); err == nil {
			var titles []string
			for _, sec := range rep.sections {
				titles = append(titles, sec.title)
			}
			line := fmt.Sprintf(rerunPrefix+" (-only %s -merge): %s, at commit %s on %s, %s in all.",
				strings.Join(o.only, ","), strings.Join(titles, "; "), b.machine.commit, b.machine.date.Format("2006-01-02 15:04 MST"), rep.took.Round(time.Second))
			if o.note != "" {
				line += " " + o.note
			}
			md = mergeReports(string(old), md, line)
		}
	}
	if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "meshka-bench: %v\n", err)
		return 1
	}
	b.progress("report written to %s (%s in all)", o.out, rep.took.Round(time.Second))
	if b.failed {
		// The report is still written, with the failures in it; the
		// exit status tells `make bench` something went wrong.
		fmt.Fprintln(os.Stderr, "meshka-bench: some runs failed; see the report's notes")
		return 1
	}
	return 0
}

// labelled runs f with pprof labels naming the measurement and side, so a
// -cpuprofile of the run splits by them (go tool pprof -tagfocus
// side=meshka), inside a -trace region of the same name. Goroutines
// started inside inherit the labels: the clients' and the meshka node's
// do, kfake's (started with the upstream) do not.
func labelled(id, side string, f func()) {
	pprof.Do(context.Background(), pprof.Labels("measurement", id, "side", side), func(ctx context.Context) {
		trace.WithRegion(ctx, id+" "+side, f)
	})
}

func writeAllocProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

// bench is what every measurement shares: the flags, the machine, the
// time budget and the progress log.
type bench struct {
	opts    options
	machine machine
	start   time.Time
	// deadline is when the whole run should be done; roundsFor consults
	// it before every round after a loop's first, and measurements with
	// optional parts (fan-out at N=1000) before starting them.
	deadline time.Time
	// sec is the budget's account of the running section, and later the
	// mandatory estimates of the sections still to run after it.
	sec    sectionBudget
	later  []time.Duration
	failed bool
	// shutdownCuts counts meshka nodes whose shutdown outlasted
	// shutdownGrace; measurements note it in the report.
	shutdownCuts int
	// p1Direct is P1's direct median in MB/s, 0 when P1 did not run; P2
	// produces at half of it. c1Direct likewise for C1 and C2.
	p1Direct, c1Direct float64
	// meshNodes is how many joined meshka nodes a "meshka" side runs:
	// 1, or 3 for the cluster measurements.
	meshNodes int
	// via, when set, secures the produce runs (S1): the upstream, the
	// node's listener and the client; nil for plaintext everywhere.
	via *secureVia
}

func newBench(o options) *bench {
	now := time.Now()
	// The default budget leaves room for compiling (go run, about 30 s
	// on the 2-core machine when meshka changed) inside 14 min, well
	// inside `make bench`'s 15. The mandatory parts of a -quick run take
	// 2.5-3 min (C5/C6's failover round alone 35 s, S1-S3's first
	// rounds 29-46 s), so its 75 s only ever leaves each loop one round.
	budget := 13*time.Minute + 30*time.Second
	if o.quick {
		budget = 75 * time.Second
	}
	return &bench{opts: o, machine: readMachine(), start: now, deadline: now.Add(budget), meshNodes: 1}
}

// progress prints a timestamped line to stderr so a long run shows where
// it is.
func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

// produceRounds is the A/B pairs P1, P2, P4₁ and P4₁ₜ run: two more than
// the rest. Their figures move most between runs on a shared 2-core
// machine (the clients, kfake and meshka all saturate it), and they are
// short enough that two more pairs fit the budget.
func (o options) produceRounds() int {
	if o.quick {
		return o.rounds
	}
	return o.rounds + 2
}

// remaining is the time left in the run's budget.
func (b *bench) remaining() time.Duration { return time.Until(b.deadline) }
