package main

import (
	"fmt"
	"runtime"
	"time"

	"github.com/meshka/meshka/config"
)

// mqttIdleKeepAlive is the keep alive (seconds) of M3's idle
// connections: long enough that no PINGREQ is due while they are
// measured, as a device's would be between its messages.
const mqttIdleKeepAlive = 300

// mqttIdleQuick is M3's connections with -quick.
const mqttIdleQuick = 2000

// runMQTTConns is M3: the memory an idle MQTT connection costs, P6's
// method with an MQTT CONNECT on each connection, meshka's process and
// mosquitto's.
func runMQTTConns(b *bench) section {
	s := section{heads: mqttHeads}
	bin := mosquittoOr(b, &s, "M3")
	if bin == "" {
		return s
	}
	n := idleConns
	if b.opts.quick {
		n = mqttIdleQuick
	}
	// Both ends of n connections do not fit under the hard file limit in
	// one process; the clients are in a child, and the brokers (this
	// process, or mosquitto, which inherits the limit) need n and some.
	if err := raiseFileLimit(n + 1000); err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+err.Error())
		return s
	}
	up, err := mqttUpstream(b)
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+err.Error())
		return s
	}
	defer up.close()
	per := map[string][]float64{}
	for _, persistent := range []bool{false, true} {
		id := "M3"
		if persistent {
			id = "M3p"
		}
		for r := range b.roundsFor(id, b.opts.rounds) {
			for _, side := range mqttSides {
				collectGarbage()
				x := m3Once(b, up, bin, side, r, n, persistent)
				s.samples = append(s.samples, x)
				if x.err != "" {
					b.failed = true
					b.progress("%s round %d %s: FAILED: %s", id, r, side, x.err)
					s.notes = append(s.notes, fmt.Sprintf("FAILED: %s round %d %s: %s", id, r, side, x.err))
					continue
				}
				b.progress("%s round %d/%d %-9s %6.2f KiB RSS per connection (%d connections in %.1f s)",
					id, r, b.opts.rounds, side, x.extra["rss"], x.records, x.elapsed.Seconds())
				per[id+side] = append(per[id+side], x.extra["rss"])
			}
		}
	}
	s.rows = []row{{
		id: "M3", what: fmt.Sprintf("process RSS per idle MQTT connection (%d connections, each CONNECTed, MQTT 3.1.1, clean session, keep alive %d s): meshka's process, and mosquitto's for reference", n, mqttIdleKeepAlive),
		unit: "KiB", direct: per["M3mosquitto"], meshka: per["M3meshka"], result: absolute("KiB"), target: "≤ 16 KiB", check: func(x float64) bool { return x <= 16 },
	}, {
		id: "M3p", what: fmt.Sprintf("the same with persistent sessions (clean session 0: each kept in the sessions topic and held through a lease of the mesh, renewed every 2 s)"),
		unit: "KiB", direct: per["M3pmosquitto"], meshka: per["M3pmeshka"], result: absolute("KiB"), target: "recorded",
	}}
	s.rawHead = []string{"connections", "RSS KiB/conn", "heap KiB/conn", "stacks KiB/conn", "goroutines/conn", "setup"}
	s.raw = func(x sample) []string {
		if x.side != "meshka" {
			return []string{fmt.Sprint(x.records), fmt.Sprintf("%.2f", x.extra["rss"]), "—", "—", "—", fmt.Sprintf("%.2f s", x.elapsed.Seconds())}
		}
		return []string{fmt.Sprint(x.records), fmt.Sprintf("%.2f", x.extra["rss"]), fmt.Sprintf("%.2f", x.extra["heap"]),
			fmt.Sprintf("%.2f", x.extra["stack"]), fmt.Sprintf("%.2f", x.extra["goroutines"]), fmt.Sprintf("%.2f s", x.elapsed.Seconds())}
	}
	s.notes = append(s.notes,
		fmt.Sprintf("Method (P6's): a fresh broker per run (a meshka node serving MQTT in this process, in front of kfake, or a mosquitto "+
			"child process), one MQTT connection opened and closed, then a child process opens %d TCP connections over 127.0.0.1, %d at once, "+
			"and on each sends CONNECT and reads its CONNACK; then all stay idle. meshka: this process's VmRSS (/proc/self/status) before "+
			"and after, each time after three runtime.GC calls, debug.FreeOSMemory and a 300 ms settle; mosquitto: VmRSS of its process "+
			"(/proc/PID/status) after a 300 ms settle. The delta ÷ %d is the figure. The client ends are in the child, so neither broker's "+
			"figure holds them. Kernel socket buffers are not process memory and are not counted.", n, dialWorkers, n),
		"What an idle meshka MQTT connection holds: its read loop's goroutine, waiting for a packet's first byte with no read "+
			"buffer (a pooled 4 KiB buffer is borrowed only while bytes are there: mappers/mqtt/wire), its stack kept small because "+
			"CONNECT, SUBSCRIBE and UNSUBSCRIBE are handled on short-lived goroutines of their own (their calls into leases and tables "+
			"go deep), the connection's state and session (a clean session is not written to the sessions topic), its node-local "+
			"session lease and the keep alive's read deadline; its writer goroutine exists only while something is queued. Heap and "+
			"stack columns in the raw table are runtime.MemStats deltas (HeapInuse, StackInuse) per connection. mosquitto holds a "+
			"context struct and small buffers per client in one C process.",
		"M3p: a persistent session holds more: a lease of the mesh (its lease actor, on the node the mesh places it on, "+
			"here this one, with a 64-message mailbox, and a goroutine of the mesh's renewing it every 2 s), its state in the "+
			"sessions table (on the table actor's node, here this one), and the session's lease watch is a callback, not a goroutine. "+
			"mosquitto keeps a persistent session in the same context struct. Before the lease actor's mailbox was made small, its "+
			"preallocated ring of 4096 slots cost some 100 KiB per persistent session (117 KiB per connection in all, one-off run).",
		"Before the read buffer was borrowed and the deep handling moved off the read loop, a heap profile with the 10,000 "+
			"connections open had 46.2 of 93.9 MB in the 4 KiB read buffers, and the read loops' stacks had grown to 16 KiB (17.4 KiB "+
			"per connection in all, at f1c4fae).",
	)
	return s
}

// m3Once measures one side with n idle MQTT connections.
func m3Once(b *bench, up *upstream, bin, side string, round, n int, persistent bool) sample {
	x := sample{case_: "M3", round: round, side: side, extra: map[string]float64{}}
	if persistent {
		x.case_ = "M3p"
	}
	br, err := startMQTTSide(b, side, up, bin, func(cfg *config.Config) { cfg.MQTT.MaxConnections = n + 1000 })
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer br.stop()
	// One connection first, so what the first costs once (the sessions
	// table's activation, mosquitto's first allocations) is in the
	// baseline.
	c, err := dialMQTT(br.addr, "warm", mqttIdleKeepAlive)
	if err != nil {
		x.err = "warming connection: " + err.Error()
		return x
	}
	c.close()
	measure := func() (int64, runtime.MemStats, int) {
		if br.mosq != nil {
			time.Sleep(300 * time.Millisecond)
			return br.mosq.rss(), runtime.MemStats{}, 0
		}
		return settledMemory()
	}
	rss0, ms0, g0 := measure()
	start := time.Now()
	child, err := startMQTTConnChild(br.addr, n, persistent)
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer child.stop()
	x.elapsed = time.Since(start)
	rss1, ms1, g1 := measure()
	x.records = int64(n)
	x.extra["rss"] = float64(rss1-rss0) / 1024 / float64(n)
	x.extra["heap"] = (float64(ms1.HeapInuse) - float64(ms0.HeapInuse)) / 1024 / float64(n)
	x.extra["stack"] = (float64(ms1.StackInuse) - float64(ms0.StackInuse)) / 1024 / float64(n)
	x.extra["goroutines"] = float64(g1-g0) / float64(n)
	return x
}
