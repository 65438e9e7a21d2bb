package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	httpmap "github.com/meshka/meshka/mappers/http"
)

const (
	h3Rate     = 1000 // records per second
	h3Duration = 5 * time.Second
	h3Quick    = time.Second
	h3Payload  = 256
	h3Topic    = "bench-h3"
)

// h3Readers are H3's readers of the same records, in the raw table's
// order: headless Chromium's EventSource and the bench's Go SSE client on
// meshka's stream route, and a franz-go consumer on meshka's Kafka
// listener.
var h3Readers = []string{"browser", "go-sse", "kafka"}

// runHTTPLatency is H3: records produced at h3Rate through a meshka node,
// and the latency from each one's produce to its receipt by an
// EventSource in headless Chromium, by a Go SSE client and by a franz-go
// consumer, all reading the same records at once.
func runHTTPLatency(b *bench) section {
	s := section{heads: [2]string{"franz-go consumer via meshka's Kafka listener", "SSE reader via meshka"}}
	dur := h3Duration
	if b.opts.quick {
		dur = h3Quick
	}
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		s.notes = append(s.notes, "Chromium is not installed (apt-get install chromium): the browser rows were not measured; the Go SSE client's were.")
	}
	up, err := startUpstream(b.opts.debug)
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+err.Error())
		return s
	}
	defer up.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = up.createTopic(ctx, h3Topic, 1)
	cancel()
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+err.Error())
		return s
	}
	per := map[string]map[string][]float64{}
	for _, rd := range h3Readers {
		per[rd] = map[string][]float64{}
	}
	for r := range b.roundsFor("H3", b.opts.rounds) {
		collectGarbage()
		var xs []sample
		labelled("H3", "meshka", func() { xs = h3Once(b, up, browser, r, dur) })
		for _, x := range xs {
			s.samples = append(s.samples, x)
			if x.err != "" {
				b.failed = true
				b.progress("H3 round %d %s: FAILED: %s", r, x.side, x.err)
				s.notes = append(s.notes, fmt.Sprintf("FAILED: round %d %s: %s", r, x.side, x.err))
				continue
			}
			b.progress("H3 round %d/%d %-7s p50 %6.3f ms  p99 %6.3f ms  p99.9 %6.3f ms  max %6.3f ms (%d records)",
				r, b.opts.rounds, x.side, x.extra["p50"], x.extra["p99"], x.extra["p99.9"], x.extra["max"], x.records)
			for _, p := range latencyPercentiles {
				per[x.side][p.name] = append(per[x.side][p.name], 1000*x.extra[p.name]) // µs
			}
		}
	}
	what := func(reader, p string) string {
		return fmt.Sprintf("produce → receipt latency %s at %d records/s, %d-byte JSON values, one record per produce call: %s", p, h3Rate, h3Payload, reader)
	}
	const browserReader = "an EventSource in headless Chromium (times from the page's clock)"
	const goReader = "the bench's Go SSE client"
	s.rows = []row{
		{id: "H3 p50", what: what(browserReader, "p50"), unit: "µs", direct: per["kafka"]["p50"], meshka: per["browser"]["p50"],
			result: absolute("µs"), target: "recorded"},
		{id: "H3 p99", what: what(browserReader, "p99"), unit: "µs", direct: per["kafka"]["p99"], meshka: per["browser"]["p99"],
			result: absolute("µs"), target: "≤ 10 ms (10,000 µs)", check: func(x float64) bool { return x <= 10000 }},
		{id: "H3 p99.9", what: what(browserReader, "p99.9"), unit: "µs", direct: per["kafka"]["p99.9"], meshka: per["browser"]["p99.9"],
			result: absolute("µs")},
		{id: "H3 Go p50", what: what(goReader, "p50"), unit: "µs", direct: per["kafka"]["p50"], meshka: per["go-sse"]["p50"],
			result: absolute("µs")},
		{id: "H3 Go p99", what: what(goReader, "p99"), unit: "µs", direct: per["kafka"]["p99"], meshka: per["go-sse"]["p99"],
			result: absolute("µs")},
	}
	s.rawHead = []string{"elapsed", "records", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "p50 ms by Date.now()", "p99 ms by Date.now()"}
	s.raw = func(x sample) []string {
		out := []string{fmt.Sprintf("%.2f s", x.elapsed.Seconds()), fmt.Sprint(x.records)}
		for _, k := range []string{"p50", "p90", "p99", "p99.9", "max"} {
			out = append(out, fmt.Sprintf("%.3f", x.extra[k]))
		}
		if x.side != "browser" {
			return append(out, "—", "—")
		}
		return append(out, fmt.Sprintf("%.3f", x.extra["date p50"]), fmt.Sprintf("%.3f", x.extra["date p99"]))
	}
	s.notes = append(s.notes,
		fmt.Sprintf("Method: per round a fresh meshka node in this process in front of kfake, with an HTTP stream route on a one-partition "+
			"topic, and three readers of it at once: headless Chromium (--headless=new) on a page of the harness's whose EventSource "+
			"reads the stream; the bench's Go SSE client (sseclient.go); a franz-go consumer on the node's Kafka listener. Warm-up "+
			"records every 20 ms until all three have one, then a franz-go producer on the node's Kafka listener (linger 0, acks all) "+
			"produces a record every %s on a fixed schedule for %s; each value is JSON holding the produce call's time (Unix µs) "+
			"and a sequence number. Latency is each reader's time of receipt minus that time, for every record after the first %s; "+
			"the figures are medians over the rounds of each round's percentile. Every record must reach every reader once, or the "+
			"round fails.", time.Second/h3Rate, dur, m2Skip),
		"The browser's time of receipt is taken in the EventSource's message handler, as performance.timeOrigin + performance.now() "+
			"(the wall clock when the page loaded, plus a monotonic clock with Chromium's 0.1 ms resolution for pages that are not "+
			"cross-origin isolated), against the producer's time.Now() on the same machine's clock; the raw table also has the browser's "+
			"p50 and p99 by Date.now() (whole milliseconds). The page keeps its latencies and posts them to the harness every 100 ms. "+
			"Chromium runs with --disable-background-timer-throttling and --disable-renderer-backgrounding, so a headless page is "+
			"scheduled as a visible tab would be.",
		"What each reader's path is: the record goes from the producer through the node's Kafka listener and its partition actor to "+
			"kfake (acks all), and the partition actor's long-polling fetch from kfake brings it back into the node's cache; from there "+
			"the franz-go consumer's long-polling fetch returns it, and the stream route's subscription hands it to each stream's "+
			"handler, which writes one event and flushes it. The browser adds Chromium's network stack, its renderer's event loop and "+
			"JSON.parse; the shared machine's 2 cores run the clients, meshka, kfake and Chromium, whose processes weigh on every "+
			"reader's tail: a trial -quick round without Chromium (not on PATH) had the Go SSE client's and the consumer's p99 at 0.88 "+
			"and 0.95 ms, against 1.9-3.0 ms for the same readers beside Chromium in other runs of that day (2026-12-01).",
	)
	return s
}

// h3Once runs one H3 round: one sample per reader.
func h3Once(b *bench, up *upstream, browser string, round int, dur time.Duration) []sample {
	fail := func(err string) []sample {
		var xs []sample
		for _, rd := range h3Readers {
			if rd == "browser" && browser == "" {
				continue
			}
			xs = append(xs, sample{case_: "H3", round: round, side: rd, err: err, extra: map[string]float64{}})
		}
		return xs
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur+2*time.Minute)
	defer cancel()

	// The page's harness side: it serves the page and takes its reports.
	pageLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err.Error())
	}
	pageURL := "http://" + pageLn.Addr().String()
	page := newH3Page()
	pageSrv := &http.Server{Handler: page}
	go pageSrv.Serve(pageLn)
	defer pageSrv.Close()

	n, err := up.startNode(func(cfg *config.Config) {
		cfg.HTTP.Listen = "127.0.0.1:0"
		cfg.HTTP.CORSOrigins = []string{pageURL}
		cfg.HTTP.Routes = []config.HTTPRoute{{Method: "GET", Path: "/stream", Topic: h3Topic, Capability: config.CapStream}}
	})
	if err != nil {
		return fail(err.Error())
	}
	defer stopNode(b, n)
	bd, ok := n.Binding("http")
	if !ok {
		return fail("meshka serves no HTTP")
	}
	httpAddr := bd.(*httpmap.Server).Addr().String()

	readers := map[string]*h3Reader{}
	for _, rd := range h3Readers {
		if rd == "browser" && browser == "" {
			continue
		}
		readers[rd] = &h3Reader{}
	}
	if browser != "" {
		page.reader(readers["browser"])
	}
	goSSE := readers["go-sse"]
	sc, err := dialSSE(httpAddr, "/stream", func(v []byte) { goSSE.receive(v, time.Now()) })
	if err != nil {
		return fail("Go SSE client: " + err.Error())
	}
	defer sc.close()
	kafka := readers["kafka"]
	cons, err := kgo.NewClient(clientOpts([]string{n.Addr().String()}, b.opts.debug,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{h3Topic: {0: kgo.NewOffset().AtEnd()}}))...)
	if err != nil {
		return fail(err.Error())
	}
	cctx, ccancel := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			cons.PollFetches(cctx).EachRecord(func(r *kgo.Record) { kafka.receive(r.Value, time.Now()) })
		}
	}()
	defer func() { ccancel(); <-consumed; cons.Close() }()
	if browser != "" {
		stopBrowser, err := startChromium(browser, pageURL+"/?stream="+url.QueryEscape("http://"+httpAddr+"/stream"))
		if err != nil {
			return fail("chromium: " + err.Error())
		}
		defer stopBrowser()
	}

	prod, err := kgo.NewClient(clientOpts([]string{n.Addr().String()}, b.opts.debug, kgo.DefaultProduceTopic(h3Topic), kgo.ProducerLinger(0))...)
	if err != nil {
		return fail(err.Error())
	}
	defer prod.Close()
	pad := bytes.Repeat([]byte("h"), h3Payload)
	value := func(warm bool, i int) []byte {
		v := fmt.Appendf(nil, `{"w":%t,"i":%d,"t":%d,"p":"`, warm, i, time.Now().UnixMicro())
		v = append(v, pad[:max(h3Payload-len(v)-2, 0)]...)
		return append(v, `"}`...)
	}
	var failed sync.Once
	var produceErr error
	onErr := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Do(func() { produceErr = err })
		}
	}
	// Warm-up: records every 20 ms until every reader has one; Chromium
	// takes a few seconds to start.
	deadline := time.Now().Add(60 * time.Second)
	for {
		warm := 0
		for _, rd := range readers {
			if rd.warm.Load() {
				warm++
			}
		}
		if warm == len(readers) {
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Sprintf("%d of %d readers had a warm-up record after 60 s%s", warm, len(readers), page.errText()))
		}
		prod.Produce(ctx, &kgo.Record{Value: value(true, 0)}, onErr)
		time.Sleep(20 * time.Millisecond)
	}

	total := int(dur.Seconds() * h3Rate)
	interval := time.Second / h3Rate
	skip := int(m2Skip / interval)
	start := time.Now()
	for i := range total {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		prod.Produce(ctx, &kgo.Record{Value: value(false, i)}, onErr)
	}
	elapsed := time.Since(start)
	if err := prod.Flush(ctx); err != nil && produceErr == nil {
		produceErr = err
	}
	// Every reader must have every record (the browser's reports come
	// every 100 ms).
	wait := time.Now().Add(20 * time.Second)
	for time.Now().Before(wait) {
		all := true
		for _, rd := range readers {
			if rd.count() < total {
				all = false
			}
		}
		if all {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var xs []sample
	for _, name := range h3Readers {
		rd := readers[name]
		if rd == nil {
			continue
		}
		x := sample{case_: "H3", round: round, side: name, elapsed: elapsed, extra: map[string]float64{}}
		lat, dateLat, got, dup := rd.results(skip, total)
		x.records = int64(got)
		switch {
		case produceErr != nil:
			x.err = "produce: " + produceErr.Error()
		case dup > 0:
			x.err = fmt.Sprintf("%d records received more than once", dup)
		case got != total:
			x.err = fmt.Sprintf("%d of %d records received", got, total)
			if name == "browser" {
				x.err += page.errText()
			}
		}
		for _, p := range latencyPercentiles {
			x.extra[p.name] = quantileMs(lat, p.q)
		}
		x.extra["max"] = math.NaN()
		if len(lat) > 0 {
			x.extra["max"] = float64(lat[len(lat)-1]) / 1e6
		}
		if dateLat != nil {
			x.extra["date p50"] = quantileMs(dateLat, 0.5)
			x.extra["date p99"] = quantileMs(dateLat, 0.99)
		}
		xs = append(xs, x)
	}
	return xs
}

// h3Reader collects one reader's latencies by sequence number.
type h3Reader struct {
	warm atomic.Bool
	mu   sync.Mutex
	lat  map[int]int64 // ns
	date map[int]int64 // ns, the browser's by Date.now()
	dup  int
}

// receive takes a value the reader got at t.
func (r *h3Reader) receive(v []byte, t time.Time) {
	var m struct {
		W bool  `json:"w"`
		I int   `json:"i"`
		T int64 `json:"t"`
	}
	if json.Unmarshal(v, &m) != nil {
		return
	}
	if m.W {
		r.warm.Store(true)
		return
	}
	r.add(m.I, t.Sub(time.UnixMicro(m.T)).Nanoseconds(), 0, false)
}

func (r *h3Reader) add(i int, lat, date int64, hasDate bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lat == nil {
		r.lat, r.date = map[int]int64{}, map[int]int64{}
	}
	if _, ok := r.lat[i]; ok {
		r.dup++
		return
	}
	r.lat[i] = lat
	if hasDate {
		r.date[i] = date
	}
}

func (r *h3Reader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lat)
}

// results are the sorted latencies of records skip to total, how many
// records of the run came and how many came twice.
func (r *h3Reader) results(skip, total int) (lat, date []int64, got, dup int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, l := range r.lat {
		if i >= total {
			continue
		}
		got++
		if i >= skip {
			lat = append(lat, l)
			if d, ok := r.date[i]; ok {
				date = append(date, d)
			}
		}
	}
	slices.Sort(lat)
	slices.Sort(date)
	return lat, date, got, r.dup
}

// h3Page serves the browser's page and takes what it reports.
type h3Page struct {
	rd   *h3Reader
	mu   sync.Mutex
	errs []string
}

func newH3Page() *h3Page { return &h3Page{} }

// reader sets the reader the page's reports go to.
func (p *h3Page) reader(rd *h3Reader) {
	p.mu.Lock()
	p.rd = rd
	p.mu.Unlock()
}

func (p *h3Page) errText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) == 0 {
		return ""
	}
	return fmt.Sprintf(" (the page reported: %q)", p.errs[0])
}

// h3Script reads the stream given in the page's query: each message's
// latency, by the page's high-resolution clock and by Date.now(), in ms,
// kept and posted to /report every 100 ms.
const h3Script = `<!doctype html><meta charset="utf-8"><title>H3</title><script>
const post = (body) => fetch("/report", {method: "POST", body: JSON.stringify(body)});
const es = new EventSource(new URLSearchParams(location.search).get("stream"));
let lat = [], warm = false;
es.onmessage = (e) => {
  const hr = performance.timeOrigin + performance.now(), d = Date.now();
  const m = JSON.parse(e.data);
  if (m.w) {
    if (!warm) { warm = true; post({warm: true}); }
    return;
  }
  lat.push([m.i, hr - m.t / 1000, d - m.t / 1000]);
};
es.onerror = () => post({error: "EventSource error, readyState " + es.readyState});
setInterval(() => { if (lat.length) { const b = lat; lat = []; post({lat: b}); } }, 100);
</script>`

func (p *h3Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/report" {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, h3Script)
		return
	}
	var rep struct {
		Warm  bool        `json:"warm"`
		Error string      `json:"error"`
		Lat   [][]float64 `json:"lat"`
	}
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		rep.Error = "bad report: " + err.Error()
	}
	if rep.Error != "" {
		p.mu.Lock()
		p.errs = append(p.errs, rep.Error)
		p.mu.Unlock()
	}
	p.mu.Lock()
	rd := p.rd
	p.mu.Unlock()
	if rd == nil {
		return
	}
	if rep.Warm {
		rd.warm.Store(true)
	}
	for _, l := range rep.Lat {
		if len(l) == 3 {
			rd.add(int(l[0]), int64(l[1]*1e6), int64(l[2]*1e6), true)
		}
	}
}

// startChromium opens pageURL in a headless Chromium with a profile of
// its own, and returns what ends it: the whole process group (Chromium
// forks helpers), then the profile.
func startChromium(bin, pageURL string) (func(), error) {
	profile, err := os.MkdirTemp("", "meshka-bench-chromium-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir="+profile,
		"--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows",
		"--remote-debugging-port=0", pageURL)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(profile)
		return nil, err
	}
	return func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		for range 20 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}, nil
}
