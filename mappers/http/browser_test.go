package httpmap_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
)

// chromium finds the browser, or skips (fails under CI, which installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (.ci/run installs it)")
	}
	t.Skip("chromium is not installed")
	return ""
}

// cutter is a TCP relay whose connections the test can cut, as a network
// drop would.
type cutter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); c.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return c
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nc := range c.conns {
		nc.Close()
	}
	c.conns = nil
}

// A real browser's EventSource receives a stream's events; the test cuts
// the connection; the browser reconnects by itself with Last-Event-ID and
// receives the rest: none lost, none repeated.
func TestBrowserEventSourceResumes(t *testing.T) {
	browser := chromium(t)
	var mu sync.Mutex
	got := map[string]int{}
	reports := make(chan struct{}, 1000)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/report" {
			var e struct{ ID, Data string }
			json.NewDecoder(r.Body).Decode(&e)
			mu.Lock()
			got[e.Data]++
			mu.Unlock()
			reports <- struct{}{}
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><script>
const es = new EventSource(%q);
es.onmessage = (e) => fetch("/report", {method: "POST", body: JSON.stringify({ID: e.lastEventId, Data: e.data})});
</script>`, r.URL.Query().Get("stream"))
	}))
	defer page.Close()
	env, base := start(t, func(cfg *config.Config) { cfg.HTTP.CORSOrigins = []string{page.URL} })
	relay := newCutter(t, strings.TrimPrefix(base, "http://"))
	streamURL := "http://" + relay.ln.Addr().String() + "/stream"

	// The browser's profile is removed after its processes have ended
	// (the whole process group: chromium forks helpers that write there).
	profile, err := os.MkdirTemp("", "meshka-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+profile, "--remote-debugging-port=0", page.URL+"/?stream="+streamURL)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		for range 20 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	kc, err := kgo.NewClient(kgo.SeedBrokers(env.Node.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			if err := kc.ProduceSync(t.Context(), &kgo.Record{Topic: "events", Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// wait waits until the browser reported n of the events 100 on.
	wait := func(n int) {
		deadline := time.After(60 * time.Second)
		for {
			mu.Lock()
			have := 0
			for i := 100; i < 150; i++ {
				if got[fmt.Sprint(i)] > 0 {
					have++
				}
			}
			mu.Unlock()
			if have >= n {
				return
			}
			select {
			case <-reports:
			case <-deadline:
				t.Fatalf("the browser reported %d of %d events", have, n)
			}
		}
	}
	// The browser is connected once a first event reaches it; records
	// 0, 1, ... are written until one does.
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		produce(i, i+1)
		select {
		case <-reports:
		case <-time.After(500 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("the browser never received an event")
			}
			continue
		}
		break
	}
	produce(100, 120)
	wait(20)
	relay.cut() // the network drops
	produce(120, 150)
	wait(50)
	time.Sleep(time.Second) // nothing more comes
	mu.Lock()
	defer mu.Unlock()
	for i := 100; i < 150; i++ {
		if got[fmt.Sprint(i)] != 1 {
			t.Errorf("event %d came %d times", i, got[fmt.Sprint(i)])
		}
	}
}
