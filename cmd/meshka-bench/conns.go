package main

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/config"
)

const (
	idleConns = 10000
	// childEnv marks the harness re-executed as P6's client process.
	childEnv = "MESHKA_BENCH_CHILD"
	// dialWorkers bounds concurrent dials, so the listener's accept
	// backlog never overflows into SYN retries.
	dialWorkers = 32
)

// runConns is P6: the memory one idle Kafka connection costs a meshka
// node. The client ends live in a child process: the harness's file
// limit (RLIMIT_NOFILE) cannot be raised past its hard limit, which here
// is too low for both ends of 10,000 connections in one process, and with
// the clients elsewhere this process's RSS holds only the server side.
func runConns(b *bench) section {
	s := section{}
	n := idleConns
	if err := raiseFileLimit(n + 1000); err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+err.Error())
		return s
	}
	up, err := startUpstream(b.opts.debug)
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED to start the upstream: "+err.Error())
		return s
	}
	defer up.close()

	// One unrecorded run first: memory the previous measurement freed is
	// still being returned at the start, which made the first baseline
	// read high.
	if x := connsOnce(b, up, "plain", 0, n); x.err != "" {
		b.progress("P6 warm-up: %s", x.err)
	}
	var plain, meshka []float64
	for r := range b.roundsFor("P6", b.opts.rounds) {
		for _, side := range []string{"plain", "meshka"} {
			x := connsOnce(b, up, side, r, n)
			s.samples = append(s.samples, x)
			if x.err != "" {
				b.failed = true
				b.progress("P6 round %d %s: FAILED: %s", r, side, x.err)
				s.notes = append(s.notes, fmt.Sprintf("FAILED: round %d %s: %s", r, side, x.err))
				continue
			}
			b.progress("P6 round %d/%d %-6s %6.2f KiB RSS per connection (heap %5.2f KiB, stacks %5.2f KiB, %.1f goroutines)",
				r, b.opts.rounds, side, x.extra["rss"], x.extra["heap"], x.extra["stack"], x.extra["goroutines"])
			if side == "plain" {
				plain = append(plain, x.extra["rss"])
			} else {
				meshka = append(meshka, x.extra["rss"])
			}
		}
	}
	s.rows = []row{{
		id: "P6", what: fmt.Sprintf("process RSS per idle Kafka connection (%d connections, each answered one ApiVersions); direct column: a plain Go listener holding accepted connections", n),
		unit: "KiB", direct: plain, meshka: meshka,
		result: absolute("KiB"), target: "≤ 16 KiB", check: func(x float64) bool { return x <= 16 },
	}}
	s.rawHead = []string{"connections", "RSS KiB/conn", "heap KiB/conn", "stacks KiB/conn", "goroutines/conn", "setup"}
	s.raw = func(x sample) []string {
		return []string{fmt.Sprint(x.records), fmt.Sprintf("%.2f", x.extra["rss"]), fmt.Sprintf("%.2f", x.extra["heap"]),
			fmt.Sprintf("%.2f", x.extra["stack"]), fmt.Sprintf("%.2f", x.extra["goroutines"]), fmt.Sprintf("%.2f s", x.elapsed.Seconds())}
	}
	s.notes = append(s.notes,
		fmt.Sprintf("Method: a fresh meshka node (or a plain Go listener that accepts and holds connections, the direct column), then a child "+
			"process opens %d TCP connections to it over 127.0.0.1; to meshka each sends one ApiVersions v3 request and reads the answer, "+
			"then all stay idle. This process's VmRSS (/proc/self/status) is read before and after, each time after three runtime.GC calls, "+
			"debug.FreeOSMemory and a 300 ms settle; the delta ÷ %d is the figure. The client ends are in the child, so no subtraction is "+
			"needed: the harness's hard file limit does not allow both ends of %d connections in one process.", n, n, n),
		"The meshka figure is everything the node holds per connection, the accepted socket's own Go structures included (the direct "+
			"column shows what those cost alone). Kernel socket buffers are not process memory and are not counted. Heap and stack columns "+
			"in the raw table are runtime.MemStats deltas (HeapInuse, StackInuse) per connection.",
	)
	return s
}

// connsOnce measures one side with n idle connections.
func connsOnce(b *bench, up *upstream, side string, round, n int) sample {
	return connsOnceWith(b, up, side, round, n, nil)
}

// idleTLS makes connsOnce's connections TLS (S3): the node serves them
// on a listener of its own, the plain side is a Go TLS listener that
// completes each handshake, and the child trusts caFile.
type idleTLS struct {
	server   *tls.Config
	caFile   string
	tune     func(*config.Config)
	listener string
}

// connsOnceWith is connsOnce, over TLS when sec is set.
func connsOnceWith(b *bench, up *upstream, side string, round, n int, sec *idleTLS) sample {
	x := sample{round: round, side: side, extra: map[string]float64{}}
	if side == "plain" {
		x.side = "direct"
	}
	var (
		addr    string
		stop    func()
		request bool
		held    func() int
	)
	var tune func(*config.Config)
	var clientTLS *tls.Config
	caFile := ""
	if sec != nil {
		tune, caFile = sec.tune, sec.caFile
		var err error
		if clientTLS, err = clientTLSFrom(caFile); err != nil {
			x.err = err.Error()
			return x
		}
	}
	if side == "meshka" {
		nd, err := up.startNode(tune)
		if err != nil {
			x.err = "start meshka: " + err.Error()
			return x
		}
		stop = func() {
			if err := stopNode(b, nd); err != nil {
				b.progress("P6: meshka shutdown: %v", err)
			}
		}
		addr, request = nd.Addr().String(), true
		if sec != nil {
			a, ok := nd.ListenerAddr(sec.listener)
			if !ok {
				stop()
				x.err = "meshka has no listener " + sec.listener
				return x
			}
			addr = a.String()
		}
		// One answered connection first, so the node's upstream
		// connection and version cache are in the baseline.
		if err := dialIdle(addr, 1, true, clientTLS); err != nil {
			stop()
			x.err = "warming connection: " + err.Error()
			return x
		}
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			x.err = err.Error()
			return x
		}
		var mu sync.Mutex
		var conns []net.Conn
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if sec != nil {
					tc := tls.Server(c, sec.server)
					if err := tc.Handshake(); err != nil {
						c.Close()
						continue
					}
					c = tc
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
		held = func() int { mu.Lock(); defer mu.Unlock(); return len(conns) }
		stop = func() {
			ln.Close()
			<-done
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			conns = nil
			mu.Unlock()
		}
		addr = ln.Addr().String()
	}
	defer stop()

	rss0, ms0, g0 := settledMemory()
	start := time.Now()
	child, err := startConnChild(addr, n, request, caFile)
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer child.stop()
	// The child says ready once every connection is open (and answered).
	// A plain listener may still be accepting the last few.
	for held != nil && held() < n && time.Since(start) < 30*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if held != nil && held() < n {
		x.err = fmt.Sprintf("only %d of %d connections accepted", held(), n)
		return x
	}
	x.elapsed = time.Since(start)
	rss1, ms1, g1 := settledMemory()
	x.records = int64(n)
	x.extra["rss"] = float64(rss1-rss0) / 1024 / float64(n)
	x.extra["heap"] = (float64(ms1.HeapInuse) - float64(ms0.HeapInuse)) / 1024 / float64(n)
	x.extra["stack"] = (float64(ms1.StackInuse) - float64(ms0.StackInuse)) / 1024 / float64(n)
	x.extra["goroutines"] = float64(g1-g0) / float64(n)
	return x
}

// settledMemory returns the process RSS in bytes, the runtime's memory
// statistics and the goroutine count once garbage is collected and freed
// pages are returned, so the delta between two calls is live memory.
func settledMemory() (int64, runtime.MemStats, int) {
	for range 3 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	time.Sleep(300 * time.Millisecond)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return vmRSS(), ms, runtime.NumGoroutine()
}

// vmRSS is this process's resident set size in bytes (Linux only; 0
// elsewhere).
func vmRSS() int64 { return rssOf("/proc/self/status") }

// rssOf reads VmRSS from a /proc status file, 0 if unreadable.
func rssOf(status string) int64 {
	f, err := os.Open(status)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != "VmRSS" {
			continue
		}
		fs := strings.Fields(v) // "123456 kB"
		if len(fs) == 0 {
			return 0
		}
		kb, _ := strconv.ParseInt(fs[0], 10, 64)
		return kb * 1024
	}
	return 0
}

// raiseFileLimit lifts the soft open-file limit towards want, within the
// hard limit, which an unprivileged process cannot raise.
func raiseFileLimit(want int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if l.Cur >= uint64(want) {
		return nil
	}
	l.Cur = min(uint64(want), l.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("setrlimit NOFILE %d: %w", l.Cur, err)
	}
	if l.Cur < uint64(want) {
		return fmt.Errorf("open-file limit is %d (hard), %d needed", l.Max, want)
	}
	return nil
}

// connChild is the child process holding the client ends.
type connChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func startConnChild(addr string, n int, request bool, caFile string) (*connChild, error) {
	return startConnChildEnv(addr, n, "MESHKA_BENCH_REQUEST="+strconv.FormatBool(request), "MESHKA_BENCH_CA="+caFile)
}

// startMQTTConnChild starts a child whose connections each send an MQTT
// CONNECT, with clean session 0 when persistent, and read its CONNACK
// (M3, M3p).
func startMQTTConnChild(addr string, n int, persistent bool) (*connChild, error) {
	return startConnChildEnv(addr, n, "MESHKA_BENCH_MQTT=true", "MESHKA_BENCH_PERSISTENT="+strconv.FormatBool(persistent))
}

// startConnChildEnv starts the child with env, telling it what to do
// on each connection, added to its environment.
func startConnChildEnv(addr string, n int, env ...string) (*connChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), childEnv+"=conns", "MESHKA_BENCH_ADDR="+addr, "MESHKA_BENCH_N="+strconv.Itoa(n)), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start child: %w", err)
	}
	c := &connChild{cmd: cmd, stdin: stdin}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout) // until the child exits
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			c.stop()
			return nil, fmt.Errorf("child: %q", line)
		}
	case <-time.After(2 * time.Minute):
		c.stop()
		return nil, fmt.Errorf("child not ready after 2 minutes")
	}
	return c, nil
}

// stop closes the child's stdin, which makes it close every connection
// and exit, and waits for it.
func (c *connChild) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// runConnChild is the child's whole life: open the connections, say
// ready, hold them until stdin closes.
func runConnChild() int {
	n, err := strconv.Atoi(os.Getenv("MESHKA_BENCH_N"))
	if err != nil {
		fmt.Println("bad MESHKA_BENCH_N")
		return 2
	}
	if err := raiseFileLimit(n + 100); err != nil {
		fmt.Println(err)
		return 1
	}
	var tlsCfg *tls.Config
	if ca := os.Getenv("MESHKA_BENCH_CA"); ca != "" {
		if tlsCfg, err = clientTLSFrom(ca); err != nil {
			fmt.Println(err)
			return 1
		}
	}
	addr := os.Getenv("MESHKA_BENCH_ADDR")
	var conns []net.Conn
	if os.Getenv("MESHKA_BENCH_MQTT") == "true" {
		conns, err = dialEach(n, func(i int) (net.Conn, error) {
			c, err := dialMQTTSession(addr, fmt.Sprintf("idle-%d", i), mqttIdleKeepAlive, os.Getenv("MESHKA_BENCH_PERSISTENT") != "true")
			if err != nil {
				return nil, err
			}
			return c.nc, nil
		})
	} else {
		conns, err = dialConns(addr, n, os.Getenv("MESHKA_BENCH_REQUEST") == "true", tlsCfg)
	}
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	return 0
}

// dialIdle opens n connections, optionally asks ApiVersions on each, and
// closes them.
func dialIdle(addr string, n int, request bool, tlsCfg *tls.Config) error {
	conns, err := dialConns(addr, n, request, tlsCfg)
	for _, c := range conns {
		c.Close()
	}
	return err
}

// dialConns opens n connections with dialWorkers dialing at once; with
// request, each sends an ApiVersions v3 request and reads the whole answer.
func dialConns(addr string, n int, request bool, tlsCfg *tls.Config) ([]net.Conn, error) {
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "meshka-bench", "1"
	req := kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench-idle")).AppendRequest(nil, av, 1)
	return dialEach(n, func(int) (net.Conn, error) { return openIdle(addr, req, request, tlsCfg) })
}

// dialEach opens n connections with open, dialWorkers at once; on an
// error it returns those opened before it.
func dialEach(n int, open func(i int) (net.Conn, error)) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(dialWorkers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := open(i)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	out := conns[:0]
	for _, c := range conns {
		if c != nil {
			out = append(out, c)
		}
	}
	return out, firstErr
}

func openIdle(addr string, req []byte, request bool, tlsCfg *tls.Config) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err == nil && tlsCfg != nil {
		tc := tls.Client(c, tlsCfg)
		_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
		if err = tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		_ = tc.SetDeadline(time.Time{})
		c = tc
	}
	if err != nil || !request {
		return c, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("ApiVersions answer: %w", err)
	}
	if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(size[:]))); err != nil {
		c.Close()
		return nil, fmt.Errorf("ApiVersions answer: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
