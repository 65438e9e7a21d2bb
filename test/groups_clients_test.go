package test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"

	"github.com/meshka/meshka/internal/testenv"
)

// saramaMember is a sarama ConsumerGroupHandler that marks each message
// and commits every few marks and when its session ends.
type saramaMember struct {
	name    string
	topic   string
	seen    *seqLog
	claimed atomic.Int32 // partitions claimed in the current session
	marks   int          // touched only by the session's claim goroutines, under mu
	mu      sync.Mutex
}

func (h *saramaMember) Setup(s sarama.ConsumerGroupSession) error {
	h.claimed.Store(int32(len(s.Claims()[h.topic])))
	return nil
}

func (h *saramaMember) Cleanup(s sarama.ConsumerGroupSession) error {
	h.claimed.Store(0)
	// What was marked is committed before the partitions go, so their
	// next owner starts where this member stopped.
	s.Commit()
	return nil
}

func (h *saramaMember) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			h.seen.addValue(h.name, m.Value, m.Partition, m.Offset)
			s.MarkMessage(m, "")
			h.mu.Lock()
			h.marks++
			commit := h.marks%20 == 0
			h.mu.Unlock()
			if commit {
				s.Commit()
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

// Two sarama ConsumerGroup members, with each of sarama's range and
// round-robin strategies, consume a topic fully with MarkMessage and
// commits, and leave the group's offsets at the end of every partition.
func TestSaramaConsumerGroup(t *testing.T) {
	env := testenv.Start(t)
	strategies := []struct {
		name string
		s    sarama.BalanceStrategy
	}{
		{"range", sarama.NewBalanceStrategyRange()},
		{"roundrobin", sarama.NewBalanceStrategyRoundRobin()},
	}
	for _, st := range strategies {
		t.Run(st.name, func(t *testing.T) {
			ctx := timeout(t, 40*time.Second)
			topic, group := "sarama-grp-"+st.name, "sarama-grp-"+st.name
			const parts, half = 4, 500
			createTopic(t, ctx, env.Client(t), topic, parts, nil)
			prod := manualProducer(t, env)
			produceSeq(t, ctx, prod, topic, parts, 0, half, 50, 0)

			cfg := saramaConfig()
			cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{st.s}
			cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
			cfg.Consumer.Offsets.AutoCommit.Enable = false
			cfg.Consumer.Group.Session.Timeout = groupSession
			cfg.Consumer.Group.Heartbeat.Interval = groupHeartbeat
			cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second

			seen := newSeqLog()
			consumeCtx, stop := context.WithCancel(context.Background())
			defer stop()
			var wg sync.WaitGroup
			var errMu sync.Mutex
			var groupErrs []string
			members := make([]*saramaMember, 2)
			for i := range members {
				h := &saramaMember{name: fmt.Sprintf("s%d", i+1), topic: topic, seen: seen}
				members[i] = h
				g, err := sarama.NewConsumerGroup([]string{env.Addr()}, group, cfg)
				if err != nil {
					t.Fatalf("consumer group: %v", err)
				}
				runSaramaMember(consumeCtx, &wg, g, h, topic, func(msg string) {
					errMu.Lock()
					groupErrs = append(groupErrs, msg)
					errMu.Unlock()
				})
			}

			// The second half is written once both members hold
			// partitions, so both have records to consume.
			waitFor(t, ctx, "both members to claim partitions", func() bool {
				return members[0].claimed.Load() > 0 && members[1].claimed.Load() > 0
			})
			produceSeq(t, ctx, prod, topic, parts, half, 2*half, 50, 0)
			waitFor(t, ctx, fmt.Sprintf("all %d records consumed", 2*half), func() bool { return seen.distinct() == 2*half })
			stop()
			wg.Wait()

			dups := seen.check(t, 2*half)
			if len(dups) > 0 {
				t.Logf("duplicates (allowed around rebalances): %d", len(dups))
			}
			for _, h := range members {
				if seen.consumedBy(h.name) == 0 {
					t.Errorf("%s consumed nothing though it held partitions", h.name)
				}
			}
			for _, e := range groupErrs {
				t.Errorf("sarama group error: %s", e)
			}
			checkCommittedAtEnd(t, ctx, env, group, topic)
		})
	}
}

// Two kafka-go Readers in one group consume a topic fully, committing each
// message, and leave the group's offsets at the end of every partition.
func TestKafkaGoConsumerGroup(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 40*time.Second)
	const topic, group, parts, n = "kafkago-grp", "kafkago-grp", 4, 400
	cl := env.Client(t)
	createTopic(t, ctx, cl, topic, parts, nil)

	var errMu sync.Mutex
	var readerErrs []string
	logErr := func(name string) kafka.LoggerFunc {
		return func(msg string, args ...any) {
			errMu.Lock()
			defer errMu.Unlock()
			readerErrs = append(readerErrs, name+": "+fmt.Sprintf(msg, args...))
		}
	}
	seen := newSeqLog()
	readCtx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	var commitErrs []string
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("k%d", i)
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:           []string{env.Addr()},
			GroupID:           group,
			Topic:             topic,
			MinBytes:          1,
			MaxBytes:          1 << 20,
			MaxWait:           time.Second, // kafka-go leaves a quarter for the answer to arrive
			StartOffset:       kafka.FirstOffset,
			SessionTimeout:    groupSession,
			HeartbeatInterval: groupHeartbeat,
			RebalanceTimeout:  10 * time.Second,
			JoinGroupBackoff:  200 * time.Millisecond,
			ErrorLogger:       logErr(name),
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.FetchMessage(readCtx)
				if err != nil {
					return // the test stopped reading
				}
				seen.addValue(name, m.Value, int32(m.Partition), m.Offset)
				if err := r.CommitMessages(readCtx, m); err != nil && readCtx.Err() == nil {
					errMu.Lock()
					commitErrs = append(commitErrs, fmt.Sprintf("%s: commit %d/%d: %v", name, m.Partition, m.Offset, err))
					errMu.Unlock()
				}
			}
		}()
	}
	// Records are written once both readers are in the group, so both
	// have partitions with records to read.
	waitStable(t, ctx, cl, group, 2)
	produceSeq(t, ctx, manualProducer(t, env), topic, parts, 0, n, 50, 0)
	waitFor(t, ctx, fmt.Sprintf("all %d records read", n), func() bool { return seen.distinct() == n })
	stop()
	wg.Wait()

	dups := seen.check(t, n)
	if len(dups) > 0 {
		t.Logf("duplicates (allowed around rebalances): %d", len(dups))
	}
	for _, name := range []string{"k1", "k2"} {
		if seen.consumedBy(name) == 0 {
			t.Errorf("%s read nothing though both readers were in the group", name)
		}
	}
	for _, e := range commitErrs {
		t.Errorf("kafka-go %s", e)
	}
	for _, e := range readerErrs {
		// Closing a reader mid-fetch logs the cancellation, and a
		// member syncing while the other joins is told to rejoin
		// (REBALANCE_IN_PROGRESS), which kafka-go logs as an error
		// too; anything else is a protocol problem.
		if strings.Contains(e, "context canceled") || strings.Contains(e, "[27] Rebalance In Progress") {
			t.Logf("kafka-go reader: %s", e)
			continue
		}
		t.Errorf("kafka-go reader error: %s", e)
	}
	checkCommittedAtEnd(t, ctx, env, group, topic)
}

// runSaramaMember consumes topic in g as member h until ctx ends, calling
// Consume again after every rebalance (it returns at each), and reports
// every error of the group through fail. wg counts its two goroutines.
func runSaramaMember(ctx context.Context, wg *sync.WaitGroup, g sarama.ConsumerGroup, h *saramaMember, topic string, fail func(string)) {
	wg.Add(2)
	go func() {
		defer wg.Done()
		for err := range g.Errors() {
			fail(fmt.Sprintf("%s: %v", h.name, err))
		}
	}()
	go func() {
		defer wg.Done()
		defer g.Close()
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				fail(fmt.Sprintf("%s: consume: %v", h.name, err))
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
}
