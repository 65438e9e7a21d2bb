package main

import (
	"bufio"
	"fmt"
	"syscall"
	"time"

	"github.com/meshka/meshka/config"
)

const (
	m1Subscribers = 100
	m1Payload     = 256
	m1Messages    = 10000
	m1Quick       = 2000
	m1Topic       = "bench/m1"
	// m1QueuedBytes is meshka's mqtt.max_queued_bytes in M1: more than a
	// run's messages, as mosquitto's max_queued_messages is.
	m1QueuedBytes = 16 * config.MiB
)

// runMQTTFanout is M1: one publisher at QoS 0, as fast as it can write,
// to m1Subscribers subscribers of its topic: messages delivered per
// second, meshka ÷ mosquitto.
func runMQTTFanout(b *bench) section {
	s := section{heads: mqttHeads}
	bin := mosquittoOr(b, &s, "M1")
	if bin == "" {
		return s
	}
	msgs := m1Messages
	if b.opts.quick {
		msgs = m1Quick
	}
	up, err := mqttUpstream(b)
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+err.Error())
		return s
	}
	defer up.close()

	// One unrecorded run of each side first, a quarter as long: the
	// process's first node and first connections are slow.
	for _, side := range mqttSides {
		collectGarbage()
		if x := m1Once(b, up, bin, side, 0, msgs/4); x.err != "" {
			b.progress("M1 warm-up %s: %s", side, x.err)
		}
	}
	per := map[string][]float64{}
	for r := range b.roundsFor("M1", b.opts.rounds) {
		for _, side := range mqttSides {
			collectGarbage()
			var x sample
			labelled("M1", side, func() { x = m1Once(b, up, bin, side, r, msgs) })
			s.samples = append(s.samples, x)
			if x.err != "" {
				b.failed = true
				b.progress("M1 round %d %s: FAILED: %s", r, side, x.err)
				s.notes = append(s.notes, fmt.Sprintf("FAILED: round %d %s: %s", r, side, x.err))
				continue
			}
			b.progress("M1 round %d/%d %-9s %9.0f messages/s delivered (%d of %d in %.2f s; publishing took %.2f s)",
				r, b.opts.rounds, side, x.extra["rate"], x.records, int64(x.extra["sent"])*m1Subscribers, x.elapsed.Seconds(), x.extra["publish"])
			per[side] = append(per[side], x.extra["rate"])
		}
	}
	s.rows = []row{{
		id: "M1", what: fmt.Sprintf("QoS 0, %d-byte payloads, 1 publisher → %d subscribers of its topic: messages delivered per second, meshka ÷ mosquitto", m1Payload, m1Subscribers),
		unit: "msg/s", direct: per["mosquitto"], meshka: per["meshka"], target: "≥ 1.0", check: func(x float64) bool { return x >= 1.0 },
	}}
	var mosqCPU, mosqSelf, meshSelf, meshSecs []float64
	for _, x := range s.samples {
		if x.err != "" || x.elapsed <= 0 {
			continue
		}
		if x.side == "mosquitto" {
			mosqCPU = append(mosqCPU, 100*x.extra["brokerCPU"]/x.elapsed.Seconds())
			mosqSelf = append(mosqSelf, 100*x.extra["selfCPU"]/x.elapsed.Seconds())
		} else {
			meshSelf = append(meshSelf, 100*x.extra["selfCPU"]/x.elapsed.Seconds())
			meshSecs = append(meshSecs, x.elapsed.Seconds())
		}
	}
	s.rawHead = []string{"published", "delivered", "delivered %", "publishing s", "elapsed", "msg/s delivered", "mosquitto CPU s", "this process CPU s"}
	s.raw = func(x sample) []string {
		want := x.extra["sent"] * m1Subscribers
		return []string{fmt.Sprint(int64(x.extra["sent"])), fmt.Sprint(x.records), fmt.Sprintf("%.2f", 100*float64(x.records)/max(want, 1)),
			fmt.Sprintf("%.2f", x.extra["publish"]), fmt.Sprintf("%.2f s", x.elapsed.Seconds()), fmt.Sprintf("%.0f", x.extra["rate"]), brokerCPU(x),
			fmt.Sprintf("%.2f", x.extra["selfCPU"])}
	}
	s.notes = append(s.notes,
		fmt.Sprintf("Method: per run a fresh broker (a meshka node serving MQTT in front of kfake, or a mosquitto child process), %d subscribers "+
			"(MQTT 3.1.1, clean session, QoS 0) of one topic and one publisher, all the bench's own raw client (mqttclient.go: mochi-mqtt's "+
			"packets encode, a read loop of a few lines parses, no goroutine but one reader per subscriber) in this process. Warm-up messages "+
			"are published every 20 ms until every subscriber has one (so every subscription is live on both brokers); then %d messages of "+
			"%d bytes are written back to back (64 KiB buffered writes); the rate is the messages the subscribers received ÷ the time from the "+
			"first write to the last receipt (waiting until all came, or nothing came for 2 s).", m1Subscribers, msgs, m1Payload),
		mosquittoVersion(bin)+": the generated configuration (listener on 127.0.0.1, allow_anonymous, persistence false, "+
			"max_queued_messages 10000000 and max_queued_bytes 0 so none is dropped, max_inflight_messages 64 as meshka's mqtt.max_inflight; "+
			"the rest mosquitto's defaults; set_tcp_nodelay on made a trial M1 slower for mosquitto, and M2 no faster). meshka: mqtt defaults "+
			"(QoS 0 publishes produced with acks none and a 1 ms linger) except a subscriber's "+
			fmt.Sprintf("outbox, which drops QoS 0 messages beyond mqtt.max_queued_bytes, set to %d MiB for the same reason: at its 1 MiB default trial "+
				"runs lost up to 0.2%% of the messages to subscribers slowed by the shared cores), the three mapper topics created upstream with one "+
				"partition. mosquitto is Debian's package (`apt-get install mosquitto`); without it M1-M3 are skipped with a note.", m1QueuedBytes>>20),
		fmt.Sprintf("What limits it: mosquitto serves every connection on one thread and writes each message to each subscriber with a write "+
			"of its own; its process was busy a median %.0f%% of one core over its runs (its CPU time ÷ the run's elapsed, raw table), and this "+
			"process, which holds the subscribers and the publisher, %.0f%%. meshka delivers to each subscriber on a goroutine of its own, on "+
			"both cores, and writes what is queued for a subscriber with one writev; this process (meshka, kfake and the clients) used a median "+
			"%.0f%% (of 200%%) during the meshka runs, which last a median %.2f s, so a pause of some ms on the shared machine moves them by "+
			"several percent. A CPU profile of a 3-round M1 run (meshka-bench -only M1 -cpuprofile, samples labelled side=meshka: 4.1 s) "+
			"puts 36%% of meshka's samples in delivering (mappers/mqtt/subscribe.go deliver: layout.Publish and encoding the message once per "+
			"subscriber, mochi-mqtt's PublishEncode into a new bytes.Buffer, outbox.go encode) and 28%% in subscriptions reading on alone "+
			"(mesh/hub.go catchUp, readRecords at hub.go:329): the burst fills a subscription's 256-record queue, it is taken off the shared "+
			"reader and reads on from the node's cache, decoding each batch again for itself; upstream is read once all the same (M4).",
			median(mosqCPU), median(mosqSelf), median(meshSelf), median(meshSecs)),
	)
	return s
}

// m1Once runs one side of one M1 round.
func m1Once(b *bench, up *upstream, bin, side string, round, msgs int) sample {
	x := sample{case_: "M1", round: round, side: side, extra: map[string]float64{}}
	// Neither broker drops: mosquitto's queues are lifted in its
	// configuration, and meshka's outbox holds every message of the run.
	br, err := startMQTTSide(b, side, up, bin, func(cfg *config.Config) { cfg.MQTT.MaxQueuedBytes = m1QueuedBytes })
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer br.stop()
	subs, err := dialSubs(br.addr, "m1-sub", m1Subscribers, m1Topic, 0, false)
	if err != nil {
		x.err = err.Error()
		return x
	}
	pub, err := dialMQTT(br.addr, "m1-pub", 300)
	if err != nil {
		closeSubs(subs)
		x.err = "publisher: " + err.Error()
		return x
	}
	defer pub.close()
	poke := func() error {
		_, err := pub.nc.Write(encodePublish(m1Topic, 0, 0, markedPayload('W', m1Payload)))
		return err
	}
	if err := allWarm(subs, poke, 20*time.Second); err != nil {
		closeSubs(subs)
		x.err = err.Error()
		return x
	}
	// Warm-up messages still on their way are not counted; the measured
	// ones share one encoding.
	msg := encodePublish(m1Topic, 0, 0, markedPayload('B', m1Payload))
	w := bufio.NewWriterSize(pub.nc, 64<<10)
	var cpu0 time.Duration
	if br.mosq != nil {
		cpu0 = br.mosq.cpu()
	}
	self0 := selfCPU()
	start := time.Now()
	for range msgs {
		if _, err := w.Write(msg); err != nil {
			break
		}
	}
	err = w.Flush()
	x.extra["publish"] = time.Since(start).Seconds()
	x.extra["sent"] = float64(msgs)
	total, last := waitDelivered(subs, int64(msgs)*m1Subscribers, 2*time.Second, 60*time.Second)
	x.extra["selfCPU"] = (selfCPU() - self0).Seconds()
	if br.mosq != nil {
		x.extra["brokerCPU"] = (br.mosq.cpu() - cpu0).Seconds()
	}
	closeSubs(subs)
	if err != nil {
		x.err = "publish: " + err.Error()
		return x
	}
	if err := subsErr(subs); err != nil {
		x.err = err.Error()
		return x
	}
	x.records = total
	x.bytes = total * m1Payload
	x.elapsed = time.Duration(last - start.UnixNano())
	if total == 0 || x.elapsed <= 0 {
		x.err = "no message delivered"
		return x
	}
	x.extra["rate"] = float64(total) / x.elapsed.Seconds()
	return x
}

// brokerCPU is mosquitto's CPU seconds over a run, for the raw table;
// meshka's are not apart from this process's.
func brokerCPU(x sample) string {
	if x.side != "mosquitto" {
		return "—"
	}
	return fmt.Sprintf("%.2f", x.extra["brokerCPU"])
}

// selfCPU is the CPU time this process has used (user and system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
