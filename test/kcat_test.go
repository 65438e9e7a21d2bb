//go:build unix

package test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestKcatScript runs test/kcat/kcat_test.sh against a freshly built meshka
// binary: librdkafka is the client most deployments meet, and the script
// also covers what only a real process has (signals, restart on a data dir).
func TestKcatScript(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("kcat is not on PATH, and CI is expected to install it: %v", err)
		}
		t.Skipf("kcat is not on PATH: %v", err)
	}
	script, err := filepath.Abs(filepath.Join("kcat", "kcat_test.sh"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	dir := t.TempDir()
	bin := filepath.Join(dir, "meshka")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/meshka/meshka/cmd/meshka")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Env = append(os.Environ(), "MESHKA_BIN="+bin, "MESHKA_ADDR="+freeAddr(t), "WORKDIR="+work)
	// The script starts meshka and kcat; on a hang the whole process
	// group goes, so nothing outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out := &lineLogger{t: t}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	out.flush()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("kcat_test.sh failed with exit status %d (ctx: %v)", exit.ExitCode(), ctx.Err())
		}
		t.Fatalf("kcat_test.sh: %v", err)
	}
}

// freeAddr is a loopback address nothing listens on at the moment; the
// script's meshka takes it shortly after.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// lineLogger passes the script's output to t.Log a line at a time as it
// arrives, so -v shows progress live and a failure shows all of it.
type lineLogger struct {
	t   *testing.T
	mu  sync.Mutex
	buf []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.t.Log(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.t.Log(string(l.buf))
		l.buf = nil
	}
}
