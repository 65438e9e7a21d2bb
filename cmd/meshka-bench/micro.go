package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// runMicro runs the packages' Go micro-benchmarks (every *_bench_test.go
// file) with `go test` as a subprocess, so `make bench` stays one command,
// and tabulates them.
func runMicro(b *bench) section {
	s := section{noRaw: true}
	pkgs, err := benchPackages(".")
	if err != nil || len(pkgs) == 0 {
		b.failed = true
		s.notes = append(s.notes, fmt.Sprintf("FAILED: no *_bench_test.go files found under the working directory (%v); run from the module root.", err))
		return s
	}
	benchtime := "1s"
	if b.opts.quick {
		benchtime = "100ms"
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		goBin = p
	}
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", benchtime, "-count", "1"}, pkgs...)
	b.progress("micro: go %s", strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		b.failed = true
		s.notes = append(s.notes, fmt.Sprintf("FAILED: go test: %v: %s", err, strings.TrimSpace(errOut.String()+out.String())))
		return s
	}
	var t strings.Builder
	t.WriteString("| package | benchmark | ns/op | MB/s | B/op | allocs/op |\n|---|---|---:|---:|---:|---:|\n")
	pkg := ""
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/meshka/meshka/")
			continue
		}
		r, ok := parseBenchLine(line)
		if !ok {
			continue
		}
		fmt.Fprintf(&t, "| %s | %s | %s | %s | %s | %s |\n", pkg, r.name, r.get("ns/op"), r.get("MB/s"), r.get("B/op"), r.get("allocs/op"))
		b.progress("micro: %s %s %s ns/op %s allocs/op", pkg, r.name, r.get("ns/op"), r.get("allocs/op"))
	}
	s.tables = append(s.tables, t.String())
	s.notes = append(s.notes,
		fmt.Sprintf("`go test -run '^$' -bench . -benchmem -benchtime %s %s`, one run each, on the same machine right after the "+
			"end-to-end measurements; ns/op varies by several percent between runs, B/op and allocs/op do not.", benchtime, strings.Join(pkgs, " ")),
		"DecodeProduce: checkSize, parseHeader, the flexible header's tags and kmsg's decode of a Produce v9 request with one 16 KiB batch "+
			"(the batch stays a slice of the frame). AppendResponseFetch: appendResponse encoding a Fetch v12 response with 1 MiB of records "+
			"into a reused buffer (the path of every response that is not spliced; a copy of every byte). FetchAssembly: from a cache "+
			"ReadResult of 64 batches (1 MiB) to the buffers handed to the connection's write. LogRead: Log.Read at a random offset of a "+
			"10,000-batch cache with a 1 MiB limit. Split: records.Split over 1 MiB of batches.",
	)
	return s
}

// benchPackages lists the packages under root with *_bench_test.go files.
func benchPackages(root string) ([]string, error) {
	var pkgs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), "_bench_test.go") {
			p := "./" + filepath.ToSlash(filepath.Dir(path))
			if !slices.Contains(pkgs, p) {
				pkgs = append(pkgs, p)
			}
		}
		return nil
	})
	slices.Sort(pkgs)
	return pkgs, err
}

// benchLine is one parsed `go test -bench` result line.
type benchLine struct {
	name   string
	values map[string]string // unit → value
}

func (r benchLine) get(unit string) string {
	if v, ok := r.values[unit]; ok {
		return v
	}
	return "—"
}

// parseBenchLine reads "BenchmarkX-2  N  v unit  v unit ...".
func parseBenchLine(line string) (benchLine, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
		return benchLine{}, false
	}
	if _, err := strconv.Atoi(f[1]); err != nil {
		return benchLine{}, false
	}
	r := benchLine{name: f[0], values: map[string]string{}}
	if i := strings.LastIndexByte(r.name, '-'); i > 0 {
		r.name = r.name[:i] // the GOMAXPROCS suffix
	}
	for i := 2; i+1 < len(f); i += 2 {
		r.values[f[i+1]] = f[i]
	}
	return r, true
}
