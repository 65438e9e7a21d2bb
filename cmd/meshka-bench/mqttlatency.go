package main

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

const (
	m2Rate     = 1000 // messages per second
	m2Duration = 5 * time.Second
	m2Quick    = time.Second
	// m2Skip leaves the first messages of a run out of the figures, as P2
	// does.
	m2Skip    = 500 * time.Millisecond
	m2Payload = 256
	m2Topic   = "bench/m2"
	// m2Window is the publisher's QoS 1 messages in flight at most:
	// meshka's mqtt.max_inflight, which it enforces (a 3.1.1 client
	// beyond it is disconnected).
	m2Window = 64
)

// runMQTTLatency is M2: QoS 1 messages published at m2Rate to one QoS 1
// subscriber; the latency from the publisher's write to the
// subscriber's receipt, p50 and p99, through meshka and mosquitto.
func runMQTTLatency(b *bench) section {
	s := section{heads: mqttHeads}
	bin := mosquittoOr(b, &s, "M2")
	if bin == "" {
		return s
	}
	dur := m2Duration
	if b.opts.quick {
		dur = m2Quick
	}
	up, err := mqttUpstream(b)
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+err.Error())
		return s
	}
	defer up.close()
	for _, side := range mqttSides {
		if x := m2Once(b, up, bin, side, 0, time.Second); x.err != "" {
			b.progress("M2 warm-up %s: %s", side, x.err)
		}
	}
	per := map[string]map[string][]float64{"mosquitto": {}, "meshka": {}}
	for r := range b.roundsFor("M2", b.opts.rounds) {
		for _, side := range mqttSides {
			collectGarbage()
			var x sample
			labelled("M2", side, func() { x = m2Once(b, up, bin, side, r, dur) })
			s.samples = append(s.samples, x)
			if x.err != "" {
				b.failed = true
				b.progress("M2 round %d %s: FAILED: %s", r, side, x.err)
				s.notes = append(s.notes, fmt.Sprintf("FAILED: round %d %s: %s", r, side, x.err))
				continue
			}
			b.progress("M2 round %d/%d %-9s p50 %6.3f ms  p99 %6.3f ms  p99.9 %6.3f ms  max %6.3f ms (%d messages)",
				r, b.opts.rounds, side, x.extra["p50"], x.extra["p99"], x.extra["p99.9"], x.extra["max"], x.records)
			for _, p := range latencyPercentiles {
				per[side][p.name] = append(per[side][p.name], 1000*x.extra[p.name]) // µs: the rows print one decimal
			}
		}
	}
	what := func(p string) string {
		return fmt.Sprintf("QoS 1 publish → deliver latency %s at %d msg/s, %d-byte payloads, 1 publisher → 1 QoS 1 subscriber", p, m2Rate, m2Payload)
	}
	s.rows = []row{
		{id: "M2 p50", what: what("p50"), unit: "µs", direct: per["mosquitto"]["p50"], meshka: per["meshka"]["p50"],
			result: absolute("µs"), target: "recorded"},
		{id: "M2 p99", what: what("p99"), unit: "µs", direct: per["mosquitto"]["p99"], meshka: per["meshka"]["p99"],
			result: absolute("µs"), target: "≤ 10 ms (10,000 µs) through meshka", check: func(x float64) bool { return x <= 10000 }},
		{id: "M2 p99.9", what: what("p99.9"), unit: "µs", direct: per["mosquitto"]["p99.9"], meshka: per["meshka"]["p99.9"],
			result: absolute("µs")},
	}
	s.rawHead = []string{"elapsed", "messages", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "window full"}
	s.raw = func(x sample) []string {
		out := []string{fmt.Sprintf("%.2f s", x.elapsed.Seconds()), fmt.Sprint(x.records)}
		for _, k := range []string{"p50", "p90", "p99", "p99.9", "max"} {
			out = append(out, fmt.Sprintf("%.3f", x.extra[k]))
		}
		return append(out, fmt.Sprint(int64(x.extra["stalls"])))
	}
	s.notes = append(s.notes,
		fmt.Sprintf("Method: per run a fresh broker, one subscriber (QoS 1, acknowledging each message at once) and one publisher, the bench's "+
			"raw MQTT 3.1.1 client, in this process; after warm-up messages reach the subscriber, the publisher writes a QoS 1 message every "+
			"%s on a fixed schedule for %s, each stamped with the time of its write, and at most %d unacknowledged (meshka's mqtt.max_inflight; "+
			"\"window full\" counts the writes that had to wait for a PUBACK, which delays them past their schedule). Latency is the "+
			"subscriber's time of receipt minus the stamp, for every message written after the first %s; the figures are medians over the "+
			"rounds of each run's percentile. Every message must arrive once, or the run fails.", time.Second/m2Rate, dur, m2Window, m2Skip),
		"Through meshka a message is a Kafka record: the publish is produced with acks=all to kfake (the PUBACK waits for it), and the "+
			"subscription's partition reader fetches it back from kfake (a long-polling fetch that kfake answers when the record lands) "+
			"before it is written to the subscriber; mosquitto forwards it in memory. Both lie far under the target at this rate, which leaves "+
			"the 2 cores mostly idle; the tail (p99.9, max) is the shared machine's scheduling and, in this process, the garbage collector "+
			"of the clients, meshka and kfake together, and it moves by milliseconds between rounds on both sides (raw table).",
	)
	return s
}

// m2Once runs one side of one M2 round.
func m2Once(b *bench, up *upstream, bin, side string, round int, dur time.Duration) sample {
	x := sample{case_: "M2", round: round, side: side, extra: map[string]float64{}}
	br, err := startMQTTSide(b, side, up, bin, nil)
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer br.stop()
	subs, err := dialSubs(br.addr, "m2-sub", 1, m2Topic, 1, true)
	if err != nil {
		x.err = err.Error()
		return x
	}
	sub := subs[0]
	pub, err := dialMQTT(br.addr, "m2-pub", 300)
	if err != nil {
		closeSubs(subs)
		x.err = "publisher: " + err.Error()
		return x
	}
	defer pub.close()
	// The publisher's PUBACKs return its window's slots.
	window := make(chan struct{}, m2Window)
	for range m2Window {
		window <- struct{}{}
	}
	go func() {
		for {
			typ, _, _, err := pub.read()
			if err != nil {
				return
			}
			if typ == packets.Puback {
				select {
				case window <- struct{}{}:
				default: // a PUBACK for nothing in flight: not the bench's
				}
			}
		}
	}()
	var pid uint16
	publish := func(mark byte) error {
		pid++
		if pid == 0 {
			pid = 1
		}
		_, err := pub.nc.Write(encodePublish(m2Topic, 1, pid, markedPayload(mark, m2Payload)))
		return err
	}
	poke := func() error {
		select {
		case <-window:
			return publish('W')
		default:
			return nil
		}
	}
	if err := allWarm(subs, poke, 20*time.Second); err != nil {
		closeSubs(subs)
		x.err = err.Error()
		return x
	}
	n := int(dur.Seconds() * m2Rate)
	interval := time.Second / m2Rate
	start := time.Now()
	skipBefore := start.Add(m2Skip).UnixNano()
	var stalls int
	var sendTimes []int64
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		select {
		case <-window:
		default:
			stalls++
			<-window
		}
		sendTimes = append(sendTimes, time.Now().UnixNano())
		if err := publish('B'); err != nil {
			closeSubs(subs)
			x.err = "publish: " + err.Error()
			return x
		}
	}
	x.elapsed = time.Since(start)
	total, _ := waitDelivered(subs, int64(n), 5*time.Second, 20*time.Second)
	closeSubs(subs)
	if err := subsErr(subs); err != nil {
		x.err = err.Error()
		return x
	}
	x.records = total
	x.extra["stalls"] = float64(stalls)
	if total != int64(n) {
		x.err = fmt.Sprintf("%d of %d messages delivered", total, n)
		return x
	}
	// Receipts come in publish order (one topic, one subscription), so
	// the i-th latency belongs to the i-th write.
	var lat []int64
	for i, l := range sub.lat {
		if i < len(sendTimes) && sendTimes[i] >= skipBefore {
			lat = append(lat, l)
		}
	}
	slices.Sort(lat)
	for _, p := range latencyPercentiles {
		x.extra[p.name] = quantileMs(lat, p.q)
	}
	x.extra["max"] = math.NaN()
	if len(lat) > 0 {
		x.extra["max"] = float64(lat[len(lat)-1]) / 1e6
	}
	return x
}
