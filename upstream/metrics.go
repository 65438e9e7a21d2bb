package upstream

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// metrics are the upstream figures, by broker: requests and their errors
// on kgo's connections (metadata, admin, one-off fetches, the fetch
// streams) and on meshka's produce connections, record bytes fetched and
// produced, and whether upstream answers at all.
type metrics struct {
	requests, errors *prometheus.CounterVec
	fetched          *prometheus.CounterVec
	produced         *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, c *Client) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshka_upstream_requests_total",
			Help: "Requests meshka sent to upstream brokers, by broker id.",
		}, []string{"broker"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshka_upstream_request_errors_total",
			Help: "Requests to upstream brokers that failed to be written or answered (a connection error or a timeout, not a Kafka error code), by broker id.",
		}, []string{"broker"}),
		fetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshka_upstream_fetch_bytes_total",
			Help: "Bytes of Fetch responses read from upstream brokers, by broker id.",
		}, []string{"broker"}),
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshka_upstream_produce_bytes_total",
			Help: "Bytes of Produce requests written to upstream brokers, by broker id.",
		}, []string{"broker"}),
	}
	if reg != nil {
		up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meshka_upstream_up",
			Help: "1 while upstream answers meshka's requests, 0 since one went unanswered (a connection refused, a timeout) until the next answer.",
		}, func() float64 {
			if c.Unreachable() != nil {
				return 0
			}
			return 1
		})
		reg.MustRegister(m.requests, m.errors, m.fetched, m.produced, up)
	}
	return m
}

func brokerLabel(id int32) string { return strconv.Itoa(int(id)) }

// kgoHook counts the requests of kgo's clients.
type kgoHook struct{ m *metrics }

var (
	_ kgo.HookBrokerE2E  = kgoHook{}
	_ kgo.HookBrokerRead = kgoHook{}
)

func (h kgoHook) OnBrokerE2E(meta kgo.BrokerMetadata, _ int16, e2e kgo.BrokerE2E) {
	b := brokerLabel(meta.NodeID)
	h.m.requests.WithLabelValues(b).Inc()
	errs := h.m.errors.WithLabelValues(b) // made with the first request, so the series is there at 0
	if e2e.Err() != nil {
		errs.Inc()
	}
}

func (h kgoHook) OnBrokerRead(meta kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, err error) {
	if key == fetchKey && err == nil && n > 0 {
		h.m.fetched.WithLabelValues(brokerLabel(meta.NodeID)).Add(float64(n))
	}
}

// fetchKey is Fetch's API key.
const fetchKey = 1
