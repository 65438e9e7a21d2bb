package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// mosquittoInstall is how to get the reference broker, for the report
// and the progress log.
const mosquittoInstall = "apt-get install mosquitto (Debian, Ubuntu), brew install mosquitto, or https://mosquitto.org/download/"

// findMosquitto is the mosquitto binary: on PATH, or in the sbin
// directories Debian installs it in and a non-root PATH leaves out.
func findMosquitto() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("mosquitto not found on PATH, nor in /usr/sbin or /usr/local/sbin")
}

// mosquittoVersion is the first line of `mosquitto -h`, e.g.
// "mosquitto version 2.0.11".
func mosquittoVersion(bin string) string {
	out, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits 3
	line, _, _ := strings.Cut(string(out), "\n")
	if line = strings.TrimSpace(line); !strings.HasPrefix(line, "mosquitto") {
		return "mosquitto (version unknown)"
	}
	return line
}

// mosquitto is a mosquitto broker run as a child process on a free port
// of 127.0.0.1, with a generated configuration.
type mosquitto struct {
	cmd    *exec.Cmd
	dir    string
	addr   string
	stderr *lockedBuffer
	done   chan struct{}
}

// mosquittoConfig is the reference broker's configuration: anonymous,
// no persistence, queues large enough that no test message is dropped,
// and the in-flight window per client of meshka's mqtt.max_inflight
// default; the rest is mosquitto's defaults (set_tcp_nodelay off: with
// it on, a trial M1 delivered a third less, and M2 did not change).
const mosquittoConfig = `listener %d 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 10000000
max_queued_bytes 0
max_inflight_messages 64
log_dest stderr
log_type error
log_type warning
`

func startMosquitto(bin string) (*mosquitto, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "meshka-bench-mosquitto")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(mosquittoConfig, port)), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// Running as root, mosquitto drops to the mosquitto user after
	// reading its configuration; the directory must stay readable.
	_ = os.Chmod(dir, 0o755)
	m := &mosquitto{dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), stderr: &lockedBuffer{}, done: make(chan struct{})}
	m.cmd = exec.Command(bin, "-c", conf)
	m.cmd.Stdout, m.cmd.Stderr = m.stderr, m.stderr
	if err := m.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start mosquitto: %w", err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.addr, time.Second)
		if err == nil {
			c.Close()
			return m, nil
		}
		select {
		case <-m.done:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("mosquitto exited at start: %s", m.log())
		default:
		}
		if time.Now().After(deadline) {
			m.stop()
			return nil, fmt.Errorf("mosquitto not listening on %s after 10s: %s", m.addr, m.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rss is the broker process's resident set size in bytes.
func (m *mosquitto) rss() int64 {
	return rssOf(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
}

// cpu is the CPU time the broker process has used so far (user and
// system), from /proc/PID/stat; 0 if unreadable.
func (m *mosquitto) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", m.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing parenthesis, utime and stime being the 12th
	// and 13th there.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's
// times: 100 on every Linux architecture Go runs on.
const clockTicks = 100

// log is what mosquitto wrote, trimmed for an error message.
func (m *mosquitto) log() string {
	s := strings.TrimSpace(m.stderr.String())
	if len(s) > 500 {
		s = "…" + s[len(s)-500:]
	}
	return s
}

// stop ends the broker (SIGTERM, then SIGKILL after 5 s) and removes its
// configuration.
func (m *mosquitto) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	os.RemoveAll(m.dir)
}

// freePort is a TCP port of 127.0.0.1 free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects a child's output, written and read from
// different goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
