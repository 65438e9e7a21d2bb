// Command meshka-bench measures meshka against its upstream: every
// measurement runs the same franz-go workload straight to an in-process
// kfake cluster and through a meshka node in front of it, alternating
// direct and meshka runs so machine drift cancels out, and writes a
// markdown report (BENCHMARKS.md via `make bench`).
package main

import (
	"flag"
	"fmt"
	"os"
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
}

// measurement is one independently selectable benchmark. A measurement
// may produce several report rows (fan-out yields P3 and P4 from the same
// runs, so either id selects it).
type measurement struct {
	ids   []string
	title string
	run   func(b *bench) section
}

var measurements = []measurement{
	{ids: []string{"P1"}, title: "P1 produce throughput", run: runProduce},
	{ids: []string{"P3", "P4"}, title: "P3/P4 fan-out: upstream bytes and delivered throughput", run: runFanout},
}

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	var only string
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "write the markdown report to `FILE`")
	flag.BoolVar(&o.quick, "quick", false, "shorter runs, for a smoke check (whole run under 60 s)")
	flag.IntVar(&o.rounds, "rounds", 3, "direct/meshka A/B pairs per measurement")
	flag.StringVar(&only, "only", "", "comma `LIST` of measurement ids to run (P1, P3, P4; P3 and P4 come from the same runs, so either runs both); empty runs all")
	flag.BoolVar(&o.debug, "debug", false, "log meshka at debug level and franz-go clients at warn level to stderr")
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
			fmt.Fprintf(os.Stderr, "meshka-bench: unknown measurement id %q (known: P1, P3, P4)\n", id)
			return 2
		}
		o.only = append(o.only, id)
	}

	b := newBench(o)
	b.progress("machine: %s", b.machine.summary())
	rep := report{machine: b.machine, opts: o}
	for _, m := range measurements {
		if len(o.only) > 0 && !slices.ContainsFunc(m.ids, func(id string) bool { return slices.Contains(o.only, id) }) {
			continue
		}
		b.progress("== %s", m.title)
		start, cuts := time.Now(), b.shutdownCuts
		s := m.run(b)
		if c := b.shutdownCuts - cuts; c > 0 {
			s.notes = append(s.notes, fmt.Sprintf("After the measured window, %d meshka node shutdown(s) did not finish within %s and had their connections cut: "+
				"connections whose clients had already closed still had requests in progress (at 2fdf5b7, a fetch long-polling for franz-go's default "+
				"5 s max wait kept running after its client left). This does not affect the figures.",
				c, shutdownGrace))
		}
		s.title = m.title
		s.took = time.Since(start)
		rep.sections = append(rep.sections, s)
		b.progress("== %s done in %s", m.title, s.took.Round(time.Second))
	}
	rep.took = time.Since(b.start)
	if err := os.WriteFile(o.out, []byte(rep.markdown()), 0o644); err != nil {
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

// bench is what every measurement shares: the flags, the machine, the
// time budget and the progress log.
type bench struct {
	opts    options
	machine machine
	start   time.Time
	// deadline is when the whole run should be done; measurements with
	// optional parts (fan-out at N=1000) consult it before starting them.
	deadline time.Time
	failed   bool
	// shutdownCuts counts meshka nodes whose shutdown outlasted
	// shutdownGrace; measurements note it in the report.
	shutdownCuts int
}

func newBench(o options) *bench {
	now := time.Now()
	// The budgets leave room for compiling (go run) and writing the report
	// inside the 10 min (default) and 60 s (-quick) limits.
	budget := 9 * time.Minute
	if o.quick {
		budget = 50 * time.Second
	}
	return &bench{opts: o, machine: readMachine(), start: now, deadline: now.Add(budget)}
}

// progress prints a timestamped line to stderr so a long run shows where
// it is.
func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

// remaining is the time left in the run's budget.
func (b *bench) remaining() time.Duration { return time.Until(b.deadline) }
