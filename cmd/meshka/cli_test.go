//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/embedded"
	"github.com/meshka/meshka/internal/testenv"
)

// These tests run the meshka binary as users and unit files do: exit
// statuses, what goes to stdout and stderr, signals, and the data-dir lock
// between two processes.

// binDir holds the binaries built for this test run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meshka-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := testenv.RunCovered(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

type build struct {
	once sync.Once
	path string
	err  error
}

var builds sync.Map // name → *build

// goBuild builds the package in srcDir once per test run under name.
// -trimpath lets builds from a copy of the module share compiled packages
// with builds from the module itself.
func goBuild(t *testing.T, name, srcDir string, flags ...string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(name, &build{})
	b := v.(*build)
	b.once.Do(func() {
		b.path = filepath.Join(binDir, name)
		args := append(append([]string{"build", "-trimpath", "-o", b.path}, testenv.CoverFlags()...), flags...)
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Dir = srcDir
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// meshkaBin is meshka built with neither a linked-in version nor VCS
// information, whatever GOFLAGS says.
func meshkaBin(t *testing.T) string { return goBuild(t, "meshka", ".", "-buildvcs=false") }

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

type result struct {
	stdout, stderr string
	code           int
}

// runMeshka runs bin to completion.
func runMeshka(t *testing.T, ctx context.Context, bin string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("meshka %s: %v", strings.Join(args, " "), err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

var singleDashFlag = regexp.MustCompile(`(^|\s)-[a-z][a-z-]+`)

func TestHelp(t *testing.T) {
	bin := meshkaBin(t)
	ctx := testContext(t)
	// The cluster's flags, in run and dev alike.
	clusterFlags := []string{"--node-id N", "--cluster-bind HOST:PORT", "--cluster-remote HOST:PORT", "--join HOST:PORT[,HOST:PORT…]"}
	tests := []struct {
		args  []string
		usage string   // the usage line
		flags []string // flags the usage must list
	}{
		{[]string{"--help"}, "Usage: meshka COMMAND [flags]", nil},
		{[]string{"-h"}, "Usage: meshka COMMAND [flags]", nil},
		{[]string{"help"}, "Usage: meshka COMMAND [flags]", nil},
		{[]string{"dev", "--help"}, "Usage: meshka dev [flags]", append([]string{"--config FILE", "--listen HOST:PORT", "--advertise HOST:PORT", "--data-dir DIR", "--nodes N"}, clusterFlags...)},
		{[]string{"dev", "-h"}, "Usage: meshka dev [flags]", []string{"--data-dir DIR", "--nodes N"}},
		{[]string{"run", "--help"}, "Usage: meshka run [flags]", append([]string{"--config FILE", "--listen HOST:PORT", "--advertise HOST:PORT", "--upstream BROKERS"}, clusterFlags...)},
		{[]string{"run", "--listen", "x", "-h"}, "Usage: meshka run [flags]", []string{"--upstream BROKERS"}},
		{[]string{"help", "run"}, "Usage: meshka run [flags]", append([]string{"--upstream BROKERS"}, clusterFlags...)},
		{[]string{"help", "dev"}, "Usage: meshka dev [flags]", append([]string{"--nodes N"}, clusterFlags...)},
		{[]string{"config", "--help"}, "Usage: meshka config check FILE", nil},
		{[]string{"config", "check", "--help"}, "Usage: meshka config check FILE", nil},
		{[]string{"config", "check", "-h"}, "Usage: meshka config check FILE", nil},
		{[]string{"version", "--help"}, "Usage: meshka version", nil},
		{[]string{"status", "--help"}, "Usage: meshka status [flags]", []string{"--admin HOST:PORT"}},
		{[]string{"help", "status"}, "Usage: meshka status [flags]", []string{"--admin HOST:PORT"}},
	}
	for _, tc := range tests {
		name := strings.Join(tc.args, " ")
		r := runMeshka(t, ctx, bin, tc.args...)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("meshka %s: exit %d, stderr %q; want 0 and nothing", name, r.code, r.stderr)
		}
		if first, _, _ := strings.Cut(r.stdout, "\n"); first != tc.usage {
			t.Errorf("meshka %s: usage line %q, want %q", name, first, tc.usage)
		}
		for _, f := range append(tc.flags, "-h, --help") {
			if !strings.Contains(r.stdout, "\n  "+f+" ") {
				t.Errorf("meshka %s: usage does not list %q:\n%s", name, f, r.stdout)
			}
		}
		if m := singleDashFlag.FindString(r.stdout); m != "" {
			t.Errorf("meshka %s: usage spells a flag with one dash (%q):\n%s", name, m, r.stdout)
		}
	}
	// The defaults shown are the built-in ones.
	r := runMeshka(t, ctx, bin, "dev", "--help")
	for _, want := range []string{"(default: 127.0.0.1:9092)", "(default: ./.meshka-dev)", "sets cluster.bind (default: 127.0.0.1:7946)", "sets node.id (default: 0)", "sets dev.nodes (default: 1)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("meshka dev --help lacks %q:\n%s", want, r.stdout)
		}
	}
	// --nodes is dev's alone.
	if r := runMeshka(t, ctx, bin, "run", "--help"); strings.Contains(r.stdout, "--nodes") {
		t.Errorf("meshka run --help lists --nodes:\n%s", r.stdout)
	}
}

func TestBadCommandLine(t *testing.T) {
	bin := meshkaBin(t)
	ctx := testContext(t)
	tests := []struct {
		args        []string
		first, rest string // stderr's first line, and text the usage after it must hold
	}{
		{nil, "Usage: meshka COMMAND [flags]", ""},
		{[]string{"bogus"}, `meshka: unknown command "bogus"`, "Usage: meshka COMMAND [flags]"},
		{[]string{"--bogus"}, "meshka: unknown flag --bogus", "Usage: meshka COMMAND [flags]"},
		{[]string{"run", "--bogus"}, "meshka run: unknown flag --bogus", "--upstream BROKERS"},
		{[]string{"dev", "-bogus=1"}, "meshka dev: unknown flag --bogus", "--data-dir DIR"},
		{[]string{"dev", "--listen"}, "meshka dev: flag --listen needs a value: --listen HOST:PORT", "--data-dir DIR"},
		{[]string{"run", "extra"}, `meshka run: unexpected argument "extra"`, "Usage: meshka run"},
		{[]string{"run", "--nodes", "3"}, "meshka run: unknown flag --nodes", "--upstream BROKERS"},
		{[]string{"dev", "--join"}, "meshka dev: flag --join needs a value: --join HOST:PORT[,HOST:PORT…]", "--nodes N"},
		{[]string{"config"}, "meshka config: missing subcommand", "Usage: meshka config check FILE"},
		{[]string{"config", "lint"}, `meshka config: unknown subcommand "lint"`, "Usage: meshka config check FILE"},
		{[]string{"config", "check"}, "meshka config check: missing FILE", "Usage: meshka config check FILE"},
		{[]string{"config", "check", "a", "b"}, `meshka config check: unexpected argument "b"`, "Usage: meshka config check FILE"},
		{[]string{"config", "check", "--strict", "a"}, "meshka config check: unknown flag --strict", "Usage: meshka config check FILE"},
		{[]string{"version", "--short"}, "meshka version: unknown flag --short", "Usage: meshka version"},
		{[]string{"status", "extra"}, `meshka status: unexpected argument "extra"`, "Usage: meshka status [flags]"},
		{[]string{"status", "--admin", "9644"}, `meshka status: --admin "9644": want HOST:PORT, the admin.listen (or admin.advertise) of a node`, "--admin HOST:PORT"},
		{[]string{"help", "bogus"}, `meshka: no help for "bogus"`, "Usage: meshka COMMAND"},
	}
	for _, tc := range tests {
		name := strings.Join(tc.args, " ")
		r := runMeshka(t, ctx, bin, tc.args...)
		if r.code != 2 || r.stdout != "" {
			t.Errorf("meshka %s: exit %d, stdout %q; want 2 and nothing", name, r.code, r.stdout)
		}
		if first, _, _ := strings.Cut(r.stderr, "\n"); first != tc.first {
			t.Errorf("meshka %s: stderr starts %q, want %q", name, first, tc.first)
		}
		if !strings.Contains(r.stderr, tc.rest) {
			t.Errorf("meshka %s: stderr lacks %q:\n%s", name, tc.rest, r.stderr)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	bin := meshkaBin(t)
	ctx := testContext(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.yaml", "node:\n  id: 3\n  listen: \"0.0.0.0:9092\"\n  advertise: \"proxy.example.com:9092\"\n")
	bad := write("bad.yaml", "node:\n  id: 3000000000\n  listen: \"0.0.0.0:9092\"\nkafka:\n  max_frame_byte: 1MiB\n")
	wildcard := write("wildcard.yaml", "node:\n  listen: \"[::]:9092\"\n")

	for _, path := range []string{good, "../../meshka.example.yaml"} {
		if r := runMeshka(t, ctx, bin, "config", "check", path); r.code != 0 || r.stdout != "ok\n" || r.stderr != "" {
			t.Errorf("config check %s: exit %d, stdout %q, stderr %q; want 0 and ok", path, r.code, r.stdout, r.stderr)
		}
	}

	r := runMeshka(t, ctx, bin, "config", "check", bad)
	want := bad + ":2:7: node.id: must be between 0 and 2147483647, got 3000000000\n" +
		bad + ":3:11: node.listen: listens on all interfaces (0.0.0.0); set node.advertise (or --advertise) to the host:port clients should connect to\n" +
		bad + `:5:3: kafka.max_frame_byte: unknown key "max_frame_byte" (did you mean "max_frame_bytes"?)` + "\n"
	if r.code != 1 || r.stdout != "" || r.stderr != want {
		t.Errorf("config check bad.yaml: exit %d, stdout %q, stderr:\n%s\nwant exit 1 and:\n%s", r.code, r.stdout, r.stderr, want)
	}

	r = runMeshka(t, ctx, bin, "config", "check", wildcard)
	if r.code != 1 || !strings.HasPrefix(r.stderr, wildcard+":2:11: node.listen: listens on all interfaces (::);") {
		t.Errorf("config check wildcard.yaml: exit %d, stderr %q", r.code, r.stderr)
	}

	missing := filepath.Join(dir, "missing.yaml")
	r = runMeshka(t, ctx, bin, "config", "check", missing)
	if r.code != 1 || !strings.HasPrefix(r.stderr, missing+": cannot read configuration: ") {
		t.Errorf("config check missing.yaml: exit %d, stderr %q", r.code, r.stderr)
	}

	// run and dev refuse the file the same way, before starting anything.
	data := filepath.Join(dir, "data")
	for _, args := range [][]string{{"run", "--upstream", "127.0.0.1:9"}, {"dev", "--data-dir", data}} {
		r := runMeshka(t, ctx, bin, append(args, "--config", wildcard)...)
		if r.code != 1 || !strings.HasPrefix(r.stderr, wildcard+":2:11: node.listen: listens on all interfaces") {
			t.Errorf("meshka %s with wildcard.yaml: exit %d, stderr %q", args[0], r.code, r.stderr)
		}
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dev with a bad configuration created its data dir: %v", err)
	}
}

func TestListenFlagOnAllInterfaces(t *testing.T) {
	bin := meshkaBin(t)
	ctx := testContext(t)
	data := filepath.Join(t.TempDir(), "data")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--listen", "0.0.0.0:0", "--upstream", "127.0.0.1:9"},
			"meshka run: --listen 0.0.0.0:0: node.listen: listens on all interfaces (0.0.0.0); set node.advertise (or --advertise) to the host:port clients should connect to\n"},
		{[]string{"dev", "--listen=:0", "--data-dir", data},
			"meshka dev: --listen :0: node.listen: listens on all interfaces (empty host); set node.advertise (or --advertise) to the host:port clients should connect to\n"},
	}
	for _, tc := range tests {
		if r := runMeshka(t, ctx, bin, tc.args...); r.code != 1 || r.stderr != tc.want {
			t.Errorf("meshka %s: exit %d, stderr %q; want 1 and %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	ctx := testContext(t)
	check := func(bin, want string) {
		t.Helper()
		if r := runMeshka(t, ctx, bin, "version"); r.code != 0 || r.stdout != "meshka "+want+"\n" || r.stderr != "" {
			t.Errorf("version: exit %d, stdout %q, stderr %q; want 0 and %q", r.code, r.stdout, r.stderr, "meshka "+want)
		}
	}
	check(meshkaBin(t), "dev")
	check(goBuild(t, "meshka-linked", ".", "-buildvcs=false", "-ldflags", "-X main.version=v1.2.3-test"), "v1.2.3-test")

	t.Run("vcs", func(t *testing.T) {
		if _, err := exec.LookPath("git"); err != nil {
			t.Skipf("git is not on PATH: %v", err)
		}
		// go build stamps VCS information only where .git is a directory,
		// not in a git worktree, so the module is copied into a fresh
		// repository; that also makes both a clean and a dirty tree.
		repo := t.TempDir()
		copyModule(t, ctx, repo)
		git(t, ctx, repo, "init", "-q")
		git(t, ctx, repo, "add", "-A")
		git(t, ctx, repo, "-c", "user.name=meshka test", "-c", "user.email=test@meshka.invalid",
			"-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "-m", "version test")
		rev := git(t, ctx, repo, "rev-parse", "HEAD")[:7]
		src := filepath.Join(repo, "cmd", "meshka")
		check(goBuild(t, "meshka-vcs", src, "-buildvcs=true"), rev)

		if err := os.WriteFile(filepath.Join(repo, "uncommitted.txt"), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		check(goBuild(t, "meshka-vcs-dirty", src, "-buildvcs=true"), rev+"-dirty")

		// A version linked in wins over the commit.
		check(goBuild(t, "meshka-vcs-linked", src, "-buildvcs=true", "-ldflags", "-X main.version=v9.9.9"), "v9.9.9")
	})
}

// copyModule copies the module's files, tracked and untracked but not
// ignored, into dst.
func copyModule(t *testing.T, ctx context.Context, dst string) {
	t.Helper()
	root := strings.TrimSpace(git(t, ctx, ".", "rev-parse", "--show-toplevel"))
	files := strings.Split(strings.TrimSpace(git(t, ctx, root, "ls-files", "-co", "--exclude-standard")), "\n")
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted but not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dst, f)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func git(t *testing.T, ctx context.Context, dir string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if exit, ok := err.(*exec.ExitError); ok {
			stderr = exit.Stderr
		}
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// process is a meshka that keeps running: dev or run.
type process struct {
	t    *testing.T
	cmd  *exec.Cmd
	done chan struct{} // closed when it exited

	mu      sync.Mutex
	lines   []string      // stderr, a line at a time
	partial []byte        // the unfinished last line
	more    chan struct{} // closed and replaced on each new line
}

func startMeshka(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	args = ownAdminPort(args)
	p := &process{t: t, cmd: exec.Command(bin, args...), done: make(chan struct{}), more: make(chan struct{})}
	p.cmd.Stderr = p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("stderr of meshka %s:\n%s", strings.Join(args, " "), p.stderr())
		}
	})
	return p
}

// ownAdminPort has a dev or run command line without --admin take a port
// of its own for the admin listener: tests start nodes side by side, and
// the default 127.0.0.1:9644 is taken by whichever started first.
func ownAdminPort(args []string) []string {
	serves := slices.Contains(args, "dev") || slices.Contains(args, "run")
	if !serves || slices.ContainsFunc(args, func(a string) bool { return a == "--admin" || strings.HasPrefix(a, "--admin=") }) {
		return args
	}
	return append(slices.Clone(args), "--admin", "127.0.0.1:0")
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		p.lines = append(p.lines, string(p.partial[:i]))
		p.partial = p.partial[i+1:]
		close(p.more)
		p.more = make(chan struct{})
	}
	return len(b), nil
}

func (p *process) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n") + string(p.partial)
}

// waitFor returns the first stderr line holding s, failing if the process
// exits or ctx ends first.
func (p *process) waitFor(ctx context.Context, s string) string {
	p.t.Helper()
	line, ok := p.exitOrLog(ctx, s)
	if !ok {
		p.t.Fatalf("meshka exited (%v) before logging %q", p.cmd.ProcessState, s)
	}
	return line
}

// exitOrLog returns the first stderr line holding s, or ok false once the
// process exited without logging one.
func (p *process) exitOrLog(ctx context.Context, s string) (line string, ok bool) {
	p.t.Helper()
	for i := 0; ; {
		p.mu.Lock()
		for ; i < len(p.lines); i++ {
			if line := p.lines[i]; strings.Contains(line, s) {
				p.mu.Unlock()
				return line, true
			}
		}
		more := p.more
		p.mu.Unlock()
		select {
		case <-more:
		case <-p.done:
			// Wait has returned, so every line has been written; one
			// last look.
			p.mu.Lock()
			defer p.mu.Unlock()
			for ; i < len(p.lines); i++ {
				if strings.Contains(p.lines[i], s) {
					return p.lines[i], true
				}
			}
			return "", false
		case <-ctx.Done():
			p.t.Fatalf("meshka neither exited nor logged %q: %v", s, ctx.Err())
		}
	}
}

// exit sends sig and returns the exit status, -1 for death by a signal.
func (p *process) exit(ctx context.Context, sig syscall.Signal) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-ctx.Done():
		p.t.Fatalf("meshka did not exit on %v: %v", sig, ctx.Err())
		return 0
	}
}

func TestDevLocksItsDataDir(t *testing.T) {
	bin := meshkaBin(t)
	ctx := testContext(t)
	data := filepath.Join(t.TempDir(), "data")
	args := []string{"dev", "--listen", "127.0.0.1:0", "--cluster-bind", "127.0.0.1:0", "--data-dir", data}

	first := startMeshka(t, bin, args...)
	first.waitFor(ctx, "meshka node started")

	// Should the lock fail, the second dev starts too; it must be seen
	// starting rather than be waited for.
	second := startMeshka(t, bin, args...)
	if _, started := second.exitOrLog(ctx, "meshka node started"); started {
		t.Fatalf("a second dev started on the data dir of the first")
	}
	want := fmt.Sprintf("meshka dev: data dir %s is in use by another meshka (pid %d)", data, first.cmd.Process.Pid)
	if code, stderr := second.cmd.ProcessState.ExitCode(), second.stderr(); code != 1 || stderr != want {
		t.Errorf("second dev: exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}

	if code := first.exit(ctx, syscall.SIGTERM); code != 0 {
		t.Fatalf("dev exited %d on SIGTERM, want 0", code)
	}
	first.waitFor(ctx, "meshka node stopped")

	// A dev that is killed cannot unlock, but the kernel drops its lock.
	again := startMeshka(t, bin, args...)
	again.waitFor(ctx, "meshka node started")
	if code := again.exit(ctx, syscall.SIGKILL); code != -1 {
		t.Fatalf("dev exited %d on SIGKILL, want death by the signal", code)
	}
	last := startMeshka(t, bin, args...)
	last.waitFor(ctx, "meshka node started")
	if code := last.exit(ctx, syscall.SIGTERM); code != 0 {
		t.Fatalf("dev after a killed one exited %d on SIGTERM, want 0", code)
	}
}

func TestRunDrainsOnSIGTERM(t *testing.T) {
	bin := meshkaBin(t)
	ctx := testContext(t)
	up := startUpstream(t, 1, 1)
	cfg := filepath.Join(t.TempDir(), "meshka.yaml")
	if err := os.WriteFile(cfg, []byte("log:\n  format: json\nkafka:\n  shutdown_timeout: 3s\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	p := startMeshka(t, bin, "run", "--config", cfg, "--listen", "127.0.0.1:0", "--cluster-bind", "127.0.0.1:0", "--upstream", strings.Join(up.ListenAddrs(), ","))
	var started struct{ Listen string }
	if err := json.Unmarshal([]byte(p.waitFor(ctx, `"msg":"meshka node started"`)), &started); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", started.Listen)
	if err != nil {
		t.Fatalf("the logged listen address %q: %v", started.Listen, err)
	}
	conn.Close()

	if code := p.exit(ctx, syscall.SIGTERM); code != 0 {
		t.Fatalf("run exited %d on SIGTERM, want 0", code)
	}
	var stopping struct{ Signal, Timeout string }
	if err := json.Unmarshal([]byte(p.waitFor(ctx, `"msg":"shutting down"`)), &stopping); err != nil {
		t.Fatal(err)
	}
	if stopping.Signal != "terminated" || stopping.Timeout != "3s" {
		t.Errorf("shutting down with %+v, want signal terminated and timeout 3s", stopping)
	}
	p.waitFor(ctx, `"msg":"meshka node stopped"`)
	for _, line := range strings.Split(p.stderr(), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %q", line)
		}
	}
}

// startLimited starts meshka with its open-file limit lowered to nofile, as
// a tight ulimit in production would have it.
func startLimited(t *testing.T, nofile int, args ...string) *process {
	t.Helper()
	script := fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile)
	return startMeshka(t, "/bin/sh", append([]string{"-c", script, meshkaBin(t)}, args...)...)
}

// holdConns opens n connections to addr and keeps them open until the
// test closes them with the returned func.
func holdConns(t *testing.T, addr string, n int) func() {
	t.Helper()
	var cs []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		cs = append(cs, c)
	}
	return func() {
		for _, c := range cs {
			c.Close()
		}
	}
}

// Running out of file descriptors does not stop the node: with
// kafka.max_connections above what the open-file limit allows, accepts
// fail with EMFILE, are retried with backoff and logged, and once the
// connections close the node serves a real client again.
func TestSurvivesFileDescriptorExhaustion(t *testing.T) {
	ctx := testContext(t)
	up := startUpstream(t, 1, 1)
	cfg := filepath.Join(t.TempDir(), "meshka.yaml")
	if err := os.WriteFile(cfg, []byte("log:\n  format: json\nkafka:\n  max_connections: 100000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startLimited(t, 256, "run", "--config", cfg, "--listen", "127.0.0.1:0", "--cluster-bind", "127.0.0.1:0", "--upstream", strings.Join(up.ListenAddrs(), ","))
	addr := listenAddr(t, p.waitFor(ctx, `"msg":"meshka node started"`))

	release := holdConns(t, addr, 300)
	p.waitFor(ctx, "accepting a connection failed; retrying")
	release()
	produceAndConsume(t, ctx, addr, "after-emfile")
	if code := p.exit(ctx, syscall.SIGTERM); code != 0 {
		t.Fatalf("meshka exited %d on SIGTERM after running out of descriptors, want 0", code)
	}
}

// With kafka.max_connections left at 0, the bound comes from the open-file
// limit, so connections past it are refused before descriptors run out.
func TestMaxConnectionsFromFileLimit(t *testing.T) {
	ctx := testContext(t)
	up := startUpstream(t, 1, 1)
	p := startLimited(t, 256, "run", "--listen", "127.0.0.1:0", "--cluster-bind", "127.0.0.1:0", "--upstream", strings.Join(up.ListenAddrs(), ","))
	line := p.waitFor(ctx, "meshka node started")
	addr := line[strings.Index(line, "listen=")+len("listen="):]
	addr = addr[:strings.IndexByte(addr, ' ')]

	release := holdConns(t, addr, 300)
	p.waitFor(ctx, "connection refused: max_connections reached")
	if p.logged("accepting a connection failed") {
		t.Fatal("meshka ran out of descriptors with a bound derived from its open-file limit")
	}
	release()
	produceAndConsume(t, ctx, addr, "after-refusals")
	if code := p.exit(ctx, syscall.SIGTERM); code != 0 {
		t.Fatalf("meshka exited %d on SIGTERM, want 0", code)
	}
}

// logged reports whether meshka has logged a line holding s so far.
func (p *process) logged(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// listenAddr is the listen address of a JSON "meshka node started" line.
func listenAddr(t *testing.T, line string) string {
	t.Helper()
	var started struct{ Listen string }
	if err := json.Unmarshal([]byte(line), &started); err != nil || started.Listen == "" {
		t.Fatalf("no listen address in %q: %v", line, err)
	}
	return started.Listen
}

// produceAndConsume writes one record to topic through meshka at addr and
// reads it back: the node serves real clients.
func produceAndConsume(t *testing.T, ctx context.Context, addr, topic string) {
	t.Helper()
	p, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("alive")}).FirstErr(); err != nil {
		t.Fatalf("produce through meshka: %v", err)
	}
	c, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume through meshka: %v", ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		if fs.NumRecords() > 0 {
			if v := string(fs.Records()[0].Value); v != "alive" {
				t.Fatalf("consumed %q", v)
			}
			return
		}
	}
}

// SIGKILL of the node under an idempotent producer, then a restart on the
// same address: the producer resends what was in flight and upstream
// drops what it already had, so upstream holds every record exactly once,
// in order, with nothing lost.
func TestKillAndRestartUnderIdempotentProducer(t *testing.T) {
	ctx := testContext(t)
	const topic, parts, n = "killed", 3, 30_000
	up := startUpstream(t, 3, parts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"run", "--listen", addr, "--cluster-bind", "127.0.0.1:0", "--upstream", strings.Join(up.ListenAddrs(), ",")}
	p := startMeshka(t, meshkaBin(t), args...)
	p.waitFor(ctx, "meshka node started")

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(4<<10), kgo.RecordRetries(1<<30), kgo.RecordDeliveryTimeout(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var acked sync.WaitGroup
	var errMu sync.Mutex
	var errs []error
	var ackedN atomic.Int64
	for i := 0; i < n; i++ {
		acked.Add(1)
		r := &kgo.Record{Topic: topic, Partition: int32(i % parts), Value: []byte(fmt.Sprint(i))}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer acked.Done()
			if err != nil {
				errMu.Lock()
				errs = append(errs, err)
				errMu.Unlock()
				return
			}
			ackedN.Add(1)
		})
		if i == n/3 {
			for ackedN.Load() < int64(n/6) {
				if ctx.Err() != nil {
					t.Fatal(ctx.Err())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if code := p.exit(ctx, syscall.SIGKILL); code != -1 {
				t.Fatalf("meshka exited %d on SIGKILL", code)
			}
			p = startMeshka(t, meshkaBin(t), args...)
			p.waitFor(ctx, "meshka node started")
		}
	}
	acked.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d records failed, first: %v", len(errs), n, errs[0])
	}
	if ackedN.Load() < int64(n/6) {
		t.Fatal("the node was killed before any record was acknowledged")
	}

	// Read straight from upstream: each partition holds its numbers once,
	// in increasing order.
	direct, err := kgo.NewClient(kgo.SeedBrokers(up.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	next := map[int32]int{0: 0, 1: 1, 2: 2}
	for got := 0; got < n; {
		fs := direct.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records back from upstream: %v", got, n, ctx.Err())
		}
		for _, r := range fs.Records() {
			if want := fmt.Sprint(next[r.Partition]); string(r.Value) != want {
				t.Fatalf("partition %d offset %d holds %s, want %s: lost, doubled or reordered", r.Partition, r.Offset, r.Value, want)
			}
			next[r.Partition] += parts
			got++
		}
	}
	if code := p.exit(ctx, syscall.SIGTERM); code != 0 {
		t.Fatalf("restarted meshka exited %d on SIGTERM", code)
	}
}

// startUpstream runs an embedded upstream of brokers brokers, whose topics
// are created with partitions partitions, until the test ends.
func startUpstream(t *testing.T, brokers int, partitions int32) *kfake.Cluster {
	t.Helper()
	up, err := embedded.Start(embedded.Config{Brokers: brokers, Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	return up
}
