package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/mappers/mqtt"
	"github.com/meshka/meshka/node"
)

// The MQTT measurements (M1-M4) run the bench's own MQTT client
// (mqttclient.go) against an in-process meshka node serving MQTT in front
// of kfake, and against Debian's mosquitto run as a child process, in
// alternating rounds; M4 compares meshka with one Kafka reader instead.

// mqttTopics are the mapper's Kafka topics, created upstream before a
// node starts (one partition each: the bench's MQTT topics are one name
// each, so one partition of the messages topic holds them anyway).
var mqttTopics = []struct {
	name    string
	configs []string
}{
	{"mqtt-messages", nil},
	{"mqtt-retained", []string{"cleanup.policy", "compact"}},
	{"mqtt-sessions", []string{"cleanup.policy", "compact"}},
}

// mqttUpstream starts an upstream holding the mapper's topics.
func mqttUpstream(b *bench) (*upstream, error) {
	up, err := startUpstream(b.opts.debug)
	if err != nil {
		return nil, fmt.Errorf("start upstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, t := range mqttTopics {
		if err := up.createTopic(ctx, t.name, 1, t.configs...); err != nil {
			up.close()
			return nil, err
		}
	}
	return up, nil
}

// mqttSide is one broker of a round: a meshka node serving MQTT, or a
// mosquitto child process.
type mqttSide struct {
	name string
	addr string
	node *node.Node
	mosq *mosquitto
	b    *bench
}

// startMQTTSide starts side ("meshka", in front of up, or "mosquitto",
// from bin); tune adjusts meshka's configuration.
func startMQTTSide(b *bench, side string, up *upstream, bin string, tune func(*config.Config)) (*mqttSide, error) {
	s := &mqttSide{name: side, b: b}
	if side == "mosquitto" {
		m, err := startMosquitto(bin)
		if err != nil {
			return nil, err
		}
		s.mosq, s.addr = m, m.addr
		return s, nil
	}
	n, err := up.startNode(func(cfg *config.Config) {
		cfg.MQTT.Listen = "127.0.0.1:0"
		if tune != nil {
			tune(cfg)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("start meshka: %w", err)
	}
	bd, ok := n.Binding("mqtt")
	if !ok {
		_ = stopNode(b, n)
		return nil, errors.New("meshka serves no MQTT")
	}
	s.node, s.addr = n, bd.(*mqtt.Broker).Addr().String()
	return s, nil
}

// waitConnections waits up to d until meshka's MQTT broker serves at
// most n connections (its health detail counts them).
func (s *mqttSide) waitConnections(n int, d time.Duration) {
	if s.node == nil {
		return
	}
	bd, _ := s.node.Binding("mqtt")
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		var have int
		if _, err := fmt.Sscanf(bd.Health().Detail, "%d connections", &have); err != nil || have <= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop stops the broker once the clients, closed first, are gone: a
// meshka node ends each connection as its client closes it (with 10,000
// of them, for seconds), and stopping it meanwhile would make it stop
// them all at once within stopNode's grace, which no run measures.
func (s *mqttSide) stop() {
	if s.mosq != nil {
		s.mosq.stop()
		return
	}
	s.waitConnections(0, 30*time.Second)
	if err := stopNode(s.b, s.node); err != nil {
		s.b.progress("meshka shutdown: %v", err)
	}
}

// mosquittoOr is the mosquitto binary, or "" after noting in s why the
// section is skipped.
func mosquittoOr(b *bench, s *section, id string) string {
	bin, err := findMosquitto()
	if err != nil {
		b.progress("%s SKIPPED: %v; install it: %s", id, err, mosquittoInstall)
		s.notes = append(s.notes, fmt.Sprintf("SKIPPED: %v, and %s compares meshka with it in the same run. Install it — %s — and run `make bench BENCH_ARGS=\"-only %s -merge\"`.",
			err, id, mosquittoInstall, id))
		s.noRaw = true
		return ""
	}
	return bin
}

// mqttSides are the sides of M1-M3 in the order each round runs them.
var mqttSides = []string{"mosquitto", "meshka"}

// mqttHeads name M1-M3's median columns.
var mqttHeads = [2]string{"mosquitto median", "meshka median"}

// mqttSub is one subscriber and its reading goroutine's tally. Payloads
// start with a mark: 'W' (warm-up, not counted) or 'B' (measured), then
// the publisher's send time (Unix ns, big endian).
type mqttSub struct {
	c       *mqttClient
	warm    atomic.Bool
	got     atomic.Int64
	last    atomic.Int64 // Unix ns of the last measured message
	latency bool
	lat     []int64 // ns from send to receipt; read after done
	err     error   // why reading ended early; read after done
	closing atomic.Bool
	done    chan struct{}
}

// dialSubs connects n subscribers to filter at qos, dialWorkers at a
// time, and starts their reading goroutines.
func dialSubs(addr, prefix string, n int, filter string, qos byte, latency bool) ([]*mqttSub, error) {
	subs := make([]*mqttSub, n)
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range min(dialWorkers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := dialMQTT(addr, fmt.Sprintf("%s-%d", prefix, i), 300)
				if err == nil {
					if err = c.subscribe(filter, qos); err != nil {
						c.nc.Close()
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("subscriber %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
				s := &mqttSub{c: c, latency: latency, done: make(chan struct{})}
				subs[i] = s
				go s.run()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		closeSubs(subs)
		return nil, firstErr
	}
	return subs, nil
}

// run reads until the connection closes, acknowledging QoS 1 messages
// at once.
func (s *mqttSub) run() {
	defer close(s.done)
	w := bufio.NewWriterSize(s.c.nc, 4096)
	for {
		typ, flags, body, err := s.c.read()
		if err != nil {
			if !s.closing.Load() {
				s.err = err
			}
			return
		}
		if typ != packets.Publish {
			continue
		}
		pid, pl, err := publishPayload(flags, body)
		if err != nil {
			s.err = err
			return
		}
		if flags>>1&3 == 1 {
			ack := puback(pid)
			_, _ = w.Write(ack[:])
		}
		if s.c.r.Buffered() == 0 && w.Buffered() > 0 {
			if err := w.Flush(); err != nil {
				if !s.closing.Load() {
					s.err = err
				}
				return
			}
		}
		if len(pl) < 9 {
			continue
		}
		switch pl[0] {
		case 'W':
			s.warm.Store(true)
		case 'B':
			now := time.Now().UnixNano()
			s.got.Add(1)
			s.last.Store(now)
			if s.latency {
				s.lat = append(s.lat, now-int64(binary.BigEndian.Uint64(pl[1:9])))
			}
		}
	}
}

// closeSubs disconnects the subscribers and waits for their goroutines.
func closeSubs(subs []*mqttSub) {
	for _, s := range subs {
		if s != nil {
			s.closing.Store(true)
			s.c.close()
		}
	}
	for _, s := range subs {
		if s != nil {
			<-s.done
		}
	}
}

// subsErr is the first subscriber's error, after closeSubs.
func subsErr(subs []*mqttSub) error {
	for i, s := range subs {
		if s.err != nil {
			return fmt.Errorf("subscriber %d: %w", i, s.err)
		}
	}
	return nil
}

// allWarm waits until every subscriber has a warm-up message, calling
// poke (which publishes one) every 20 ms meanwhile; subscriptions are
// live from then on, on both brokers.
func allWarm(subs []*mqttSub, poke func() error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		warm := 0
		for _, s := range subs {
			if s.warm.Load() {
				warm++
			}
		}
		if warm == len(subs) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d subscribers had a warm-up message after %s", warm, len(subs), timeout)
		}
		if err := poke(); err != nil {
			return fmt.Errorf("warm-up publish: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// markedPayload is a payload of size bytes: mark, the time now, zeros.
func markedPayload(mark byte, size int) []byte {
	p := make([]byte, max(size, 9))
	p[0] = mark
	binary.BigEndian.PutUint64(p[1:9], uint64(time.Now().UnixNano()))
	return p
}

// waitDelivered waits until the subscribers hold want measured messages
// in all, nothing more came for quiet, or limit passed; it returns the
// total and the time of the last one (Unix ns).
func waitDelivered(subs []*mqttSub, want int64, quiet, limit time.Duration) (int64, int64) {
	start := time.Now()
	var total, seen int64
	changed := time.Now()
	for {
		total = 0
		for _, s := range subs {
			total += s.got.Load()
		}
		if total >= want {
			break
		}
		if total != seen {
			seen, changed = total, time.Now()
		}
		if time.Since(changed) > quiet || time.Since(start) > limit {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	var last int64
	for _, s := range subs {
		last = max(last, s.last.Load())
	}
	return total, last
}
