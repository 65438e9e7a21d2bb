package httpmap_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"slices"
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

// pageHTML is the browser's page. With ?stream= it follows that SSE
// route with an EventSource; with ?ws= it opens a WebSocket on that
// route (subprotocol meshka.json), sends one frame once it is open, and
// reads the envelopes and acks that come. It reports everything it gets
// to /report, numbered in the order it got them: the reports are
// separate requests, which may reach the test in another order.
const pageHTML = `<!doctype html><script>
const q = new URLSearchParams(location.search);
let seq = 0;
const report = (m) => { m.seq = ++seq; fetch("/report", {method: "POST", body: JSON.stringify(m)}); };
if (q.get("stream")) {
  const es = new EventSource(q.get("stream"));
  es.onmessage = (e) => report({kind: "event", id: e.lastEventId, data: e.data});
}
if (q.get("ws")) {
  const ws = new WebSocket(q.get("ws"), "meshka.json");
  ws.onopen = () => {
    report({kind: "open", protocol: ws.protocol});
    ws.send(JSON.stringify({from: "browser"}));
  };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if ("ack" in m) {
      report({kind: "ack", ack: m.ack, partition: m.partition, offset: m.offset, error: m.error ?? ""});
      return;
    }
    report({kind: "record", partition: m.partition, offset: m.offset, key: m.key, value: m.value, position: m.position});
  };
  ws.onclose = (e) => report({kind: "close", code: e.code, reason: e.reason});
}
</script>`

// pageReport is one thing the page got.
type pageReport struct {
	Kind string // event, open, ack, record or close
	Seq  int    // the page's count, in the order it got them
	// an SSE event's
	ID, Data string
	// a WebSocket's: its subprotocol; an ack; an envelope; a close
	Protocol  string
	Ack       int64
	Partition int32
	Offset    int64
	Key       *string
	Value     json.RawMessage
	Position  string
	Error     string
	Code      int
	Reason    string
}

// page serves pageHTML and collects its reports.
type page struct {
	URL  string
	mu   sync.Mutex
	got  []pageReport
	news chan struct{}
}

func newPage(t *testing.T) *page {
	p := &page{news: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/report" {
			var rep pageReport
			if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
				t.Errorf("a report from the page: %v", err)
				return
			}
			p.mu.Lock()
			p.got = append(p.got, rep)
			p.mu.Unlock()
			select {
			case p.news <- struct{}{}:
			default:
			}
			return
		}
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, pageHTML)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// reports are the page's reports of kind, in the order the page got them.
func (p *page) reports(kind string) []pageReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []pageReport
	for _, r := range p.got {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b pageReport) int { return a.Seq - b.Seq })
	return out
}

// waitFor waits, up to 60 s, until done says the reports so far are
// enough; what names what is awaited, and have says how far it got.
func (p *page) waitFor(t *testing.T, what string, done func() (bool, string)) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		ok, have := done()
		if ok {
			return
		}
		select {
		case <-p.news:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("waiting for %s: %s", what, have)
		}
	}
}

// openBrowser starts headless Chromium on url; it is killed at cleanup.
func openBrowser(t *testing.T, url string) {
	browser := chromium(t)
	// The browser's profile is removed after its processes have ended
	// (the whole process group: chromium forks helpers that write there).
	profile, err := os.MkdirTemp("", "meshka-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+profile, "--remote-debugging-port=0", url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		for range 20 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// A real browser's EventSource receives a stream's events; the test cuts
// the connection; the browser reconnects by itself with Last-Event-ID and
// receives the rest: none lost, none repeated.
func TestBrowserEventSourceResumes(t *testing.T) {
	chromium(t)
	pg := newPage(t)
	env, base := start(t, func(cfg *config.Config) { cfg.HTTP.CORSOrigins = []string{pg.URL} })
	relay := newCutter(t, strings.TrimPrefix(base, "http://"))
	streamURL := "http://" + relay.ln.Addr().String() + "/stream"
	openBrowser(t, pg.URL+"/?stream="+url.QueryEscape(streamURL))

	kc := env.Client(t)
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			if err := kc.ProduceSync(t.Context(), &kgo.Record{Topic: "events", Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// times counts the browser's events by their data.
	times := func() map[string]int {
		out := map[string]int{}
		for _, e := range pg.reports("event") {
			out[e.Data]++
		}
		return out
	}
	// wait waits until the browser reported n of the events 100 on.
	wait := func(n int) {
		pg.waitFor(t, fmt.Sprint(n, " of the events from 100"), func() (bool, string) {
			got, have := times(), 0
			for i := 100; i < 150; i++ {
				if got[fmt.Sprint(i)] > 0 {
					have++
				}
			}
			return have >= n, fmt.Sprint("the browser reported ", have)
		})
	}
	// The browser is connected once a first event reaches it; records
	// 0, 1, ... are written until one does.
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; len(pg.reports("event")) == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the browser never received an event")
		}
		produce(i, i+1)
		select {
		case <-pg.news:
		case <-time.After(500 * time.Millisecond):
		}
	}
	produce(100, 120)
	wait(20)
	relay.cut() // the network drops
	produce(120, 150)
	wait(50)
	time.Sleep(time.Second) // nothing more comes
	got := times()
	for i := 100; i < 150; i++ {
		if got[fmt.Sprint(i)] != 1 {
			t.Errorf("event %d came %d times", i, got[fmt.Sprint(i)])
		}
	}
}

// The same page over a WebSocket: the browser's socket receives every
// record a Kafka client writes, once, in order per partition, with its
// key and value as written; the frame the browser sends is a record a
// Kafka client reads, where its ack says.
func TestBrowserWebSocket(t *testing.T) {
	chromium(t)
	pg := newPage(t)
	env, base := startWS(t, func(cfg *config.Config) { cfg.HTTP.CORSOrigins = []string{pg.URL} })
	openBrowser(t, pg.URL+"/?ws="+url.QueryEscape("ws"+strings.TrimPrefix(base, "http")+"/ws?key=browser"))

	// The ack of the page's frame says its socket is open: records
	// written from then on reach it.
	pg.waitFor(t, "the ack of the browser's frame", func() (bool, string) {
		return len(pg.reports("ack")) > 0, fmt.Sprintf("no ack; the socket opened %d times, closed %+v", len(pg.reports("open")), pg.reports("close"))
	})
	if open := pg.reports("open"); len(open) != 1 || open[0].Protocol != "meshka.json" {
		t.Fatalf("open reports %+v, want one with subprotocol meshka.json", open)
	}
	ack := pg.reports("ack")[0]
	if ack.Ack != 1 || ack.Error != "" || ack.Offset < 0 {
		t.Fatalf("the browser's ack %+v", ack)
	}

	// Half the values are JSON, half text with quotes; the keys are not
	// ASCII.
	type want struct{ key, value string }
	type at struct {
		p int32
		o int64
	}
	wants := map[at]want{{ack.Partition, ack.Offset}: {"browser", `{"from":"browser"}`}}
	kc := env.Client(t)
	const n = 60
	for i := range n {
		value := fmt.Sprintf(`{"n":%d}`, i)
		asJSON := value
		if i%2 == 1 {
			value = fmt.Sprintf(`say "%d"`, i)
			asJSON = jsonString(value)
		}
		r := &kgo.Record{Topic: "events", Key: []byte(fmt.Sprint("clé-", i)), Value: []byte(value)}
		if err := kc.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		wants[at{r.Partition, r.Offset}] = want{string(r.Key), asJSON}
	}
	pg.waitFor(t, fmt.Sprint(n+1, " records in the browser"), func() (bool, string) {
		got := len(pg.reports("record"))
		return got >= n+1, fmt.Sprint("the browser reported ", got)
	})
	time.Sleep(time.Second) // nothing more comes

	seen := map[at]int{}
	last := map[int32]int64{}
	for _, r := range pg.reports("record") {
		k := at{r.Partition, r.Offset}
		seen[k]++
		w, ok := wants[k]
		if !ok {
			t.Errorf("a record at %d/%d that was not written", r.Partition, r.Offset)
			continue
		}
		if key, _ := json.Marshal(r.Key); string(key) != jsonString(w.key) || string(r.Value) != w.value {
			t.Errorf("record at %d/%d: key %s value %s, want %s %s", r.Partition, r.Offset, key, r.Value, jsonString(w.key), w.value)
		}
		if prev, ok := last[r.Partition]; ok && r.Offset <= prev {
			t.Errorf("partition %d: offset %d came after %d", r.Partition, r.Offset, prev)
		}
		last[r.Partition] = r.Offset
	}
	for k, w := range wants {
		if seen[k] != 1 {
			t.Errorf("record %q at %d/%d came %d times", w.key, k.p, k.o, seen[k])
		}
	}
	if closed := pg.reports("close"); len(closed) > 0 {
		t.Errorf("the socket closed: %+v", closed)
	}

	// A Kafka client reads the browser's frame from upstream, where the
	// ack said, with the key the page asked for and its content type.
	cl := env.DirectClient(t, kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var mine []*kgo.Record
	for total := 0; total < n+1 && ctx.Err() == nil; {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			total++
			if string(r.Value) == `{"from":"browser"}` {
				mine = append(mine, r)
			}
		})
	}
	if len(mine) != 1 {
		t.Fatalf("the browser's frame is %d records upstream, want 1", len(mine))
	}
	r := mine[0]
	var ct string
	for _, h := range r.Headers {
		if h.Key == "content-type" {
			ct = string(h.Value)
		}
	}
	if string(r.Key) != "browser" || ct != "application/json" || r.Partition != ack.Partition || r.Offset != ack.Offset {
		t.Errorf("the browser's record: key %q content-type %q at %d/%d; acked at %d/%d", r.Key, ct, r.Partition, r.Offset, ack.Partition, ack.Offset)
	}
}

// jsonString is s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
