package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	groupMembers    = 10
	groupPartitions = 10
	// groupHeartbeat is shorter than franz-go's 3 s default on both sides:
	// members learn of a rebalance at their next heartbeat, and with 3 s
	// that wait would be most of the figure and most of its noise.
	groupHeartbeat = 100 * time.Millisecond
	groupSession   = 10 * time.Second
)

// runRebalance is P7: how long a consumer group takes to settle after one
// member leaves, meshka's group actor against kfake's coordinator.
func runRebalance(b *bench) section {
	s := section{}
	up, err := startUpstream(b.opts.debug)
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED to start the upstream: "+err.Error())
		return s
	}
	defer up.close()
	topic := fmt.Sprintf("bench-p7-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err = up.createTopic(ctx, topic, groupPartitions)
	cancel()
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+err.Error())
		return s
	}
	var direct, meshka []float64
	for r := range b.roundsFor("P7", b.opts.rounds) {
		for _, side := range []string{"direct", "meshka"} {
			x := rebalanceOnce(b, up, topic, side, r)
			s.samples = append(s.samples, x)
			if x.err != "" {
				b.failed = true
				b.progress("P7 round %d %s: FAILED: %s", r, side, x.err)
				s.notes = append(s.notes, fmt.Sprintf("FAILED: round %d %s: %s", r, side, x.err))
				continue
			}
			b.progress("P7 round %d/%d %-6s rebalance after leave %7.1f ms (group formed in %.2f s)",
				r, b.opts.rounds, side, x.extra["ms"], x.extra["form"])
			if side == "direct" {
				direct = append(direct, x.extra["ms"])
			} else {
				meshka = append(meshka, x.extra["ms"])
			}
		}
	}
	s.rows = []row{{
		id: "P7", what: fmt.Sprintf("ms from one member's Close (LeaveGroup) until the other %d have OnPartitionsAssigned for the new generation", groupMembers-1),
		unit: "ms", direct: direct, meshka: meshka,
		target: "≤ 1.0", check: func(x float64) bool { return x <= 1.0 },
	}}
	s.rawHead = []string{"rebalance ms", "group formed in", "generation before", "generation after"}
	s.raw = func(x sample) []string {
		return []string{fmt.Sprintf("%.1f", x.extra["ms"]), fmt.Sprintf("%.2f s", x.extra["form"]),
			fmt.Sprint(x.extra["genBefore"]), fmt.Sprint(x.extra["genAfter"])}
	}
	s.notes = append(s.notes,
		fmt.Sprintf("%d franz-go consumers in one fresh group per run on a %d-partition topic, with franz-go's default balancer "+
			"(cooperative-sticky), session timeout %s and heartbeat interval %s on both sides. Once every member holds one partition "+
			"in the same generation, member 0 is closed (franz-go sends LeaveGroup); the time runs from that Close call to the last "+
			"of the other members' OnPartitionsAssigned callbacks for a later generation. Direct, kfake is the group coordinator; "+
			"through meshka, its group actor is.", groupMembers, groupPartitions, groupSession, groupHeartbeat),
		"What limits it: members learn of the rebalance at their next heartbeat (up to one interval), then JoinGroup waits for every "+
			"member, the leader computes the assignment and SyncGroup hands it out; through meshka each of those requests also crosses the "+
			"proxy, whose group actor answers without asking upstream. With 9 members the last of them hears of the rebalance close to a full "+
			"heartbeat interval after the leave on either side, so both figures sit within a few ms of 100 ms and the ratio moves around "+
			"1.0 by a few percent between runs: at this resolution meshka's coordinator is as fast as kfake's, not measurably faster.",
	)
	return s
}

// member is one group consumer and what its callbacks saw.
type member struct {
	cl *kgo.Client
	mu sync.Mutex
	// owned is the member's current partitions of the topic.
	owned map[int32]bool
	// gen and at are the generation and time of the last
	// OnPartitionsAssigned.
	gen int32
	at  time.Time
}

func (m *member) state() (gen int32, owned int, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen, len(m.owned), m.at
}

// rebalanceOnce forms a group, closes one member and times the rebalance.
func rebalanceOnce(b *bench, up *upstream, topic, side string, round int) sample {
	x := sample{round: round, side: side, extra: map[string]float64{}}
	seeds, stop, err := sideSeeds(b, up, side, nil)
	if err != nil {
		x.err = err.Error()
		return x
	}
	defer stop()
	group := fmt.Sprintf("bench-p7-r%d-%s-%d", round, side, time.Now().UnixNano())
	members := make([]*member, groupMembers)
	left := false // members[0] has been closed by the measurement
	defer func() {
		var wg sync.WaitGroup
		for i, m := range members {
			if m != nil && m.cl != nil && (i > 0 || !left) {
				wg.Add(1)
				go func() { defer wg.Done(); m.cl.Close() }()
			}
		}
		wg.Wait()
	}()
	start := time.Now()
	for i := range members {
		m := &member{owned: map[int32]bool{}}
		members[i] = m
		track := func(add bool) func(context.Context, *kgo.Client, map[string][]int32) {
			return func(_ context.Context, cl *kgo.Client, ps map[string][]int32) {
				_, gen := cl.GroupMetadata()
				m.mu.Lock()
				defer m.mu.Unlock()
				for _, p := range ps[topic] {
					if add {
						m.owned[p] = true
					} else {
						delete(m.owned, p)
					}
				}
				if add {
					m.gen, m.at = gen, time.Now()
				}
			}
		}
		m.cl, err = kgo.NewClient(clientOpts(seeds, b.opts.debug,
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.SessionTimeout(groupSession), kgo.HeartbeatInterval(groupHeartbeat),
			kgo.OnPartitionsAssigned(track(true)), kgo.OnPartitionsRevoked(track(false)), kgo.OnPartitionsLost(track(false)))...)
		if err != nil {
			x.err = err.Error()
			return x
		}
	}
	// The group is formed when every member holds one partition in the
	// same generation.
	settled := func(ms []*member, partitions int) (int32, bool) {
		var gen int32 = -1
		total := 0
		for _, m := range ms {
			g, owned, _ := m.state()
			if owned == 0 || (gen >= 0 && g != gen) {
				return 0, false
			}
			gen, total = g, total+owned
		}
		return gen, total == partitions
	}
	var before int32
	for {
		g, ok := settled(members, groupPartitions)
		if ok {
			before = g
			break
		}
		if time.Since(start) > time.Minute {
			x.err = "group did not form within a minute"
			return x
		}
		time.Sleep(5 * time.Millisecond)
	}
	x.extra["form"] = time.Since(start).Seconds()
	x.extra["genBefore"] = float64(before)

	rest := members[1:]
	t0 := time.Now()
	members[0].cl.Close()
	left = true
	var last time.Time
	for {
		done, gen := true, int32(0)
		last = time.Time{}
		for _, m := range rest {
			g, _, at := m.state()
			if g <= before {
				done = false
				break
			}
			gen = g
			if at.After(last) {
				last = at
			}
		}
		if done {
			x.extra["genAfter"] = float64(gen)
			break
		}
		if time.Since(t0) > time.Minute {
			x.err = "group did not rebalance within a minute of the leave"
			return x
		}
		time.Sleep(time.Millisecond)
	}
	x.elapsed = last.Sub(t0)
	x.extra["ms"] = float64(x.elapsed.Microseconds()) / 1000
	return x
}
