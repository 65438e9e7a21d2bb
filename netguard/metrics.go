package netguard

import "github.com/prometheus/client_golang/prometheus"

// Register has reg report the listener's connections under the labels
// protocol ("kafka", "mqtt", "http") and listener (its name): open now,
// admitted and refused since it started. The figures are read at each
// scrape, so accepting costs nothing more. A nil reg registers nothing.
func (l *Listener) Register(reg prometheus.Registerer, protocol, listener string) {
	if reg == nil {
		return
	}
	labels := prometheus.Labels{"protocol": protocol, "listener": listener}
	reg.MustRegister(&listenerCollector{l: l,
		open: prometheus.NewDesc("meshka_connections", "Client connections open now.", nil, labels),
		accepted: prometheus.NewDesc("meshka_connections_accepted_total",
			"Client connections admitted within the listener's limits.", nil, labels),
		refused: prometheus.NewDesc("meshka_connections_refused_total",
			"Client connections closed at once for being over a connection limit.", nil, labels),
	})
}

type listenerCollector struct {
	l                       *Listener
	open, accepted, refused *prometheus.Desc
}

func (c *listenerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.open
	ch <- c.accepted
	ch <- c.refused
}

func (c *listenerCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(c.l.Open()))
	ch <- prometheus.MustNewConstMetric(c.accepted, prometheus.CounterValue, float64(c.l.Accepted()))
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(c.l.Refused()))
}

// Bytes are the counters of bytes read from and written to clients of
// protocol, in the families every listener of the node shares
// (meshka_received_bytes_total, meshka_sent_bytes_total): registered by
// the first caller, joined by the others. A nil reg gives counters that
// count for no one.
func Bytes(reg prometheus.Registerer, protocol string) (in, out prometheus.Counter) {
	return shared(reg, "meshka_received_bytes_total", "Bytes read from clients, by protocol.", protocol),
		shared(reg, "meshka_sent_bytes_total", "Bytes written to clients, by protocol.", protocol)
}

func shared(reg prometheus.Registerer, name, help, protocol string) prometheus.Counter {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"protocol"})
	if reg != nil {
		if err := reg.Register(vec); err != nil {
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				if v, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					vec = v
				}
			}
		}
	}
	return vec.WithLabelValues(protocol)
}
