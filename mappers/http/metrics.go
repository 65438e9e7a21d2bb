package httpmap

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshka/meshka/netguard"
)

// metrics are the HTTP mapper's figures: requests by what served them
// and their status, their latency, and the streams open now.
type metrics struct {
	requests *prometheus.CounterVec
	took     *prometheus.HistogramVec
	streams  *prometheus.GaugeVec
	sse, ws  prometheus.Gauge
	received prometheus.Counter
	sent     prometheus.Counter
	// undecodable counts the records value_format json routes left out,
	// and the keys and values v2 consumers in schema formats gave
	// undecoded.
	undecodable prometheus.Counter

	mu    sync.Mutex
	codes map[[2]string]prometheus.Counter // (capability, code) → its counter, made once
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshka_http_requests_total",
			Help: "HTTP requests answered, by what served them (a route's capability, confluent, openapi, async_reply, or none for no route) and status code.",
		}, []string{"capability", "code"}),
		took: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meshka_http_request_duration_seconds",
			Help:    "Time from an HTTP request's headers read to its handler's return, by capability (streams and WebSockets count their whole life).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"capability"}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshka_http_streams",
			Help: "Server-Sent Event streams (sse) and WebSockets (websocket) open now.",
		}, []string{"kind"}),
		codes: map[[2]string]prometheus.Counter{},
		undecodable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshka_http_values_undecodable_total",
			Help: "Records that fetch, stream and websocket routes with value_format json left out because their value did not decode (not in the wire format, an unknown schema id, or not a value of its schema), and keys and values v2 consumers in the avro, jsonschema and protobuf formats gave undecoded.",
		}),
	}
	m.received, m.sent = netguard.Bytes(reg, "http")
	m.sse, m.ws = m.streams.WithLabelValues("sse"), m.streams.WithLabelValues("websocket")
	if reg != nil {
		reg.MustRegister(m.requests, m.took, m.streams, m.undecodable)
	}
	return m
}

func (m *metrics) done(capability string, code int, since time.Time) {
	k := [2]string{capability, strconv.Itoa(code)}
	m.mu.Lock()
	c, ok := m.codes[k]
	if !ok {
		c = m.requests.WithLabelValues(k[0], k[1])
		m.codes[k] = c
	}
	m.mu.Unlock()
	c.Inc()
	m.took.WithLabelValues(capability).Observe(time.Since(since).Seconds())
}

// statusRecorder notes the status an answer was given; Unwrap lets
// http.ResponseController and the WebSocket library reach the
// connection's own Flush and Hijack.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
