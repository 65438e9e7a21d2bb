package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meshka/meshka/config"
	httpmap "github.com/meshka/meshka/mappers/http"
	"github.com/meshka/meshka/node"
)

// procRSS is a process's resident set size in bytes, 0 if unreadable.
func procRSS(pid int) int64 { return rssOf("/proc/" + strconv.Itoa(pid) + "/status") }

// nodeChild is a meshka node running in a child process of the harness,
// so that process's memory is the node's alone. The child answers
// commands, one line each, on stdin: "memory" settles its heap and
// answers its figures; end of input shuts it down.
type nodeChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // the child's stdout, after the ready line
	addr  string      // the Kafka listener
	http  string      // the HTTP listener; empty without one
}

// childStream, in a node child's environment, names a topic the child
// serves as Server-Sent Events on GET /stream of an HTTP listener.
const childStream = "MESHKA_BENCH_STREAM"

func startNodeChild(upstream []string, env ...string) (*nodeChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), childEnv+"=node", "MESHKA_BENCH_UPSTREAM="+strings.Join(upstream, ",")), env...)
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
		return nil, fmt.Errorf("start node child: %w", err)
	}
	c := &nodeChild{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case c.lines <- strings.TrimSpace(sc.Text()):
			default: // nobody asked: dropped, so the child never blocks
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-c.lines:
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "ready" {
			c.stop()
			return nil, fmt.Errorf("node child: %q", line)
		}
		c.addr = f[1]
		if len(f) > 2 {
			c.http = f[2]
		}
	case <-time.After(time.Minute):
		c.stop()
		return nil, fmt.Errorf("node child not ready after a minute")
	}
	return c, nil
}

// childMemory is what a node child answers to "memory": its RSS and the
// runtime's figures once garbage is collected (settledMemory).
type childMemory struct {
	rss, heapInuse, stackInuse int64
	goroutines                 int
}

// memory asks the child for its settled memory.
func (c *nodeChild) memory() (childMemory, error) {
	var m childMemory
	if _, err := io.WriteString(c.stdin, "memory\n"); err != nil {
		return m, fmt.Errorf("node child: %w", err)
	}
	select {
	case line, ok := <-c.lines:
		if !ok {
			return m, fmt.Errorf("node child exited")
		}
		if _, err := fmt.Sscanf(line, "memory %d %d %d %d", &m.rss, &m.heapInuse, &m.stackInuse, &m.goroutines); err != nil {
			return m, fmt.Errorf("node child answered %q: %w", line, err)
		}
		return m, nil
	case <-time.After(time.Minute):
		return m, fmt.Errorf("node child did not answer memory within a minute")
	}
}

// stop closes the child's stdin, on which it shuts its node down.
func (c *nodeChild) stop() {
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

// runNodeChild is the node child's life: start a node in front of the
// upstream, print its address, answer commands until stdin closes.
func runNodeChild() int {
	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Node.Listen = "127.0.0.1:0"
	cfg.Cluster.Bind = "127.0.0.1:0"
	cfg.Upstream.Brokers = strings.Split(os.Getenv("MESHKA_BENCH_UPSTREAM"), ",")
	cfg.Kafka.ShutdownTimeout = config.Duration(2 * time.Second)
	if topic := os.Getenv(childStream); topic != "" {
		// The HTTP listener takes as many connections as the file limit
		// allows (netguard), read when it starts: lift it first.
		var l syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err == nil {
			if err := raiseFileLimit(int(l.Max)); err != nil {
				fmt.Println(err)
				return 1
			}
		}
		cfg.HTTP.Listen = "127.0.0.1:0"
		cfg.HTTP.Routes = []config.HTTPRoute{{Method: "GET", Path: "/stream", Topic: topic, Capability: config.CapStream}}
	}
	// The hostile connections make one warning each as they are closed;
	// only errors go to the harness's terminal.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	n, err := node.Start(cfg, node.Options{Logger: log})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	ready := "ready " + n.Addr().String()
	if cfg.HTTP.Listen != "" {
		bd, ok := n.Binding("http")
		if !ok {
			fmt.Println("the node serves no HTTP")
			return 1
		}
		ready += " " + bd.(*httpmap.Server).Addr().String()
	}
	fmt.Println(ready)
	signal.Ignore(syscall.SIGINT) // the harness's Ctrl-C is the parent's to handle
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "memory" {
			rss, ms, g := settledMemory()
			fmt.Printf("memory %d %d %d %d\n", rss, ms.HeapInuse, ms.StackInuse, g)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.Shutdown(ctx)
	return 0
}
