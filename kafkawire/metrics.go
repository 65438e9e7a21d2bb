package kafkawire

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/netguard"
)

// maxKey bounds the API keys meshka answers, for the per-key arrays.
const maxKey = 75

// metrics are the Kafka edge's figures. The counters and histograms of
// every API key are made once, so a request costs two atomic updates and
// no label lookup.
type metrics struct {
	ok, failed   [maxKey + 1]prometheus.Counter
	took         [maxKey + 1]prometheus.Observer
	received     prometheus.Counter
	sent         prometheus.Counter
	readThroughs prometheus.Counter
	// topics, with admin.topic_labels, counts bytes by topic; nil
	// otherwise.
	topics *topicBytes
}

func newMetrics(reg prometheus.Registerer, topicLabels bool) *metrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshka_kafka_requests_total",
		Help: "Kafka requests answered, by API and outcome: error when the answer carries an error code (or the request closed the connection), else ok.",
	}, []string{"api", "outcome"})
	took := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "meshka_kafka_request_duration_seconds",
		Help:    "Time from a Kafka request read whole to its answer ready to write, by API (a long-polling Fetch counts its wait).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"api"})
	readThroughs := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshka_cache_read_throughs_total",
		Help: "Fetch partitions the Kafka edge read from upstream because the cache did not hold the offset asked for.",
	})
	m := &metrics{readThroughs: readThroughs}
	m.received, m.sent = netguard.Bytes(reg, "kafka")
	for key, a := range apis {
		if int(key) > maxKey || a.fn == nil {
			continue
		}
		name := kmsg.NameForKey(key)
		m.ok[key] = requests.WithLabelValues(name, "ok")
		m.failed[key] = requests.WithLabelValues(name, "error")
		m.took[key] = took.WithLabelValues(name)
	}
	cs := []prometheus.Collector{requests, took, readThroughs}
	if topicLabels {
		m.topics = newTopicBytes()
		cs = append(cs, m.topics.produced, m.topics.fetched)
	}
	if reg != nil {
		reg.MustRegister(cs...)
	}
	return m
}

// request counts one answered request.
func (m *metrics) request(key int16, failed bool, since time.Time) {
	if key < 0 || int(key) > maxKey || m.ok[key] == nil {
		return
	}
	if failed {
		m.failed[key].Inc()
	} else {
		m.ok[key].Inc()
	}
	m.took[key].Observe(time.Since(since).Seconds())
}

// topicBytes counts record bytes produced and fetched by topic; a topic's
// counters are made on its first use and kept.
type topicBytes struct {
	produced, fetched *prometheus.CounterVec
	mu                sync.Mutex
	byTopic           map[string][2]prometheus.Counter
}

func newTopicBytes() *topicBytes {
	return &topicBytes{
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshka_topic_produced_bytes_total",
			Help: "Record batch bytes Kafka clients produced, by topic (admin.topic_labels).",
		}, []string{"topic"}),
		fetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshka_topic_fetched_bytes_total",
			Help: "Record batch bytes Kafka clients fetched, by topic (admin.topic_labels).",
		}, []string{"topic"}),
		byTopic: map[string][2]prometheus.Counter{},
	}
}

func (t *topicBytes) of(topic string) [2]prometheus.Counter {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.byTopic[topic]
	if !ok {
		c = [2]prometheus.Counter{t.produced.WithLabelValues(topic), t.fetched.WithLabelValues(topic)}
		t.byTopic[topic] = c
	}
	return c
}

func (m *metrics) produced(topic string, n int) {
	if m.topics != nil && n > 0 {
		m.topics.of(topic)[0].Add(float64(n))
	}
}

func (m *metrics) fetched(topic string, n int) {
	if m.topics != nil && n > 0 {
		m.topics.of(topic)[1].Add(float64(n))
	}
}

// failed says whether an answer reports an error: its own error code or,
// for the APIs that answer per partition or per group, any entry's.
func failed(resp kmsg.Response) bool {
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return true
				}
			}
		}
	case *kmsg.FetchResponse:
		if r.ErrorCode != 0 {
			return true
		}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return true
				}
			}
		}
	case *kmsg.ListOffsetsResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return true
				}
			}
		}
	case *kmsg.OffsetCommitResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return true
				}
			}
		}
	case *kmsg.OffsetFetchResponse:
		if r.ErrorCode != 0 {
			return true
		}
		for _, g := range r.Groups {
			if g.ErrorCode != 0 {
				return true
			}
		}
	case *kmsg.MetadataResponse:
		for _, t := range r.Topics {
			if t.ErrorCode != 0 && t.ErrorCode != kerr.UnknownTopicOrPartition.Code {
				return true
			}
		}
	case *kmsg.FindCoordinatorResponse:
		if r.ErrorCode != 0 {
			return true
		}
		for _, c := range r.Coordinators {
			if c.ErrorCode != 0 {
				return true
			}
		}
	case *kmsg.JoinGroupResponse:
		return r.ErrorCode != 0 && r.ErrorCode != kerr.MemberIDRequired.Code
	case *kmsg.SyncGroupResponse:
		return r.ErrorCode != 0
	case *kmsg.HeartbeatResponse:
		return r.ErrorCode != 0 && r.ErrorCode != kerr.RebalanceInProgress.Code
	case *kmsg.LeaveGroupResponse:
		return r.ErrorCode != 0
	case *kmsg.ApiVersionsResponse:
		return r.ErrorCode != 0
	case *kmsg.SASLHandshakeResponse:
		return r.ErrorCode != 0
	case *kmsg.SASLAuthenticateResponse:
		return r.ErrorCode != 0
	case *kmsg.InitProducerIDResponse:
		return r.ErrorCode != 0
	case *kmsg.EndTxnResponse:
		return r.ErrorCode != 0
	case *kmsg.CreateTopicsResponse:
		for _, t := range r.Topics {
			if t.ErrorCode != 0 {
				return true
			}
		}
	}
	return false
}
