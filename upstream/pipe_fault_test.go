package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests break a produce pipe's connection to kfake the ways a broker
// or the network can, and check that the batch on it gets an error, that
// the connection is given up, and that the next batch goes through on a
// new one.

// produceOne submits one batch and waits for its callback.
func (e *pipeEnv) produceOne(ctx context.Context, leader int32, a *ProduceArgs) (ProduceResult, error) {
	e.t.Helper()
	r := newResults(1)
	e.submit(ctx, leader, a, r.done(0))
	r.wait(ctx, e.t)
	return r.res[0], r.errs[0]
}

// mustProduce submits one batch and fails the test unless upstream
// appended it.
func (e *pipeEnv) mustProduce(ctx context.Context, leader int32, a *ProduceArgs) {
	e.t.Helper()
	res, err := e.produceOne(ctx, leader, a)
	if err != nil || res.ErrorCode != 0 {
		e.t.Fatalf("produce %s/%d: err %v, error code %d", a.Topic, a.Partition, err, res.ErrorCode)
	}
}

// values are the records of a partition's log, read from kfake.
func (e *pipeEnv) values(ctx context.Context, topic string, partition int32) []string {
	e.t.Helper()
	var out []string
	for _, r := range e.readLog(ctx, topic, partition) {
		out = append(out, string(r.Value))
	}
	return out
}

// startWired starts a pipeEnv whose connections go through a wire, and
// sends a first batch of the topic (version version) so its produce
// connection is up. It returns the partition's leader.
func startWired(t *testing.T, ctx context.Context, topic string, version int16, adjust func(*Config)) (*pipeEnv, *wire, int32) {
	t.Helper()
	w := newWire()
	e := startPipeEnvWith(t, func(c *Config) {
		c.Dialer = w.dial
		if adjust != nil {
			adjust(c)
		}
	}, 1, topic)
	leader := e.leader(ctx, topic, 0)
	e.mustProduce(ctx, leader, args(topic, 0, version, testBatch("first")))
	return e, w, leader
}

// A broker that cannot be dialed fails the batch as not sent, so it may be
// sent again without a duplicate; once it can be dialed, the next batch
// goes through.
func TestPipeDialFailure(t *testing.T) {
	const topic = "dial"
	refuse := make(chan struct{}, 1)
	refuse <- struct{}{}
	var armed atomic.Bool
	e := startPipeEnvWith(t, func(c *Config) {
		c.Dialer = func(ctx context.Context, network, host string) (net.Conn, error) {
			if armed.Load() {
				select {
				case <-refuse:
					return nil, errors.New("test refuses the dial")
				default:
				}
			}
			var d net.Dialer
			return d.DialContext(ctx, network, host)
		}
	}, 1, topic)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// kgo's connections are made before the refusal is armed, so the one
	// refused dial is the pipe's.
	leader := e.leader(ctx, topic, 0)
	armed.Store(true)

	_, err := e.produceOne(ctx, leader, args(topic, 0, 9, testBatch("refused")))
	if !errors.Is(err, ErrNotSent) || !strings.Contains(err.Error(), "test refuses the dial") {
		t.Fatalf("batch behind a refused dial: err %v, want one wrapping ErrNotSent and the dial's error", err)
	}
	e.mustProduce(ctx, leader, args(topic, 0, 9, testBatch("after")))
	if got := e.values(ctx, topic, 0); len(got) != 1 || got[0] != "after" {
		t.Fatalf("log holds %q, want only the batch sent after the dial worked", got)
	}
}

// A write that fails fails the batch and the connection; the next batch
// goes on a new connection.
func TestPipeWriteFailure(t *testing.T) {
	const topic = "write"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, w, leader := startWired(t, ctx, topic, 9, nil)

	broken := errors.New("test breaks the write")
	w.onNextWrite(broken)
	if _, err := e.produceOne(ctx, leader, args(topic, 0, 9, testBatch("lost"))); !errors.Is(err, broken) {
		t.Fatalf("batch whose write failed: err %v, want the write's error", err)
	}
	w.awaitClose(ctx, t)
	e.mustProduce(ctx, leader, args(topic, 0, 9, testBatch("third")))
	if n := w.pipes.Load(); n != 2 {
		t.Fatalf("%d produce connections, want 2: a new one after the failed write", n)
	}
	if got := e.values(ctx, topic, 0); len(got) != 2 || got[0] != "first" || got[1] != "third" {
		t.Fatalf("log holds %q, want first and third", got)
	}
}

// An answer meshka cannot trust fails the batch it was for and ends the
// connection, since what follows it on the connection can no longer be
// matched to requests; the next batch goes on a new connection.
func TestPipeBadAnswers(t *testing.T) {
	cases := []struct {
		name    string
		rewrite func(frame []byte) []byte
		want    string // in the batch's error; "" when the batch succeeds
	}{
		{"answer to no request", func(f []byte) []byte { return append(append([]byte(nil), f...), f...) }, ""},
		{"answer above the size limit", func(f []byte) []byte {
			return binary.BigEndian.AppendUint32(nil, pipeMaxResponse+1)
		}, "answer of 16777217 bytes"},
		{"answer below the header size", func(f []byte) []byte {
			return append(binary.BigEndian.AppendUint32(nil, 3), f[4:7]...)
		}, "answer of 3 bytes"},
		{"truncated answer", func(f []byte) []byte {
			return append(binary.BigEndian.AppendUint32(nil, 8), f[4:12]...)
		}, "produce answer"},
		{"wrong correlation id", func(f []byte) []byte {
			out := append([]byte(nil), f...)
			binary.BigEndian.PutUint32(out[4:], binary.BigEndian.Uint32(out[4:])+100)
			return out
		}, "correlation id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const topic = "answers"
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			e, w, leader := startWired(t, ctx, topic, 8, nil)

			w.onNextAnswer(c.rewrite)
			res, err := e.produceOne(ctx, leader, args(topic, 0, 8, testBatch("second")))
			switch {
			case c.want == "" && (err != nil || res.ErrorCode != 0):
				t.Fatalf("batch answered before the stray answer: err %v, error code %d", err, res.ErrorCode)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("batch with a bad answer: err %v, want one saying %q", err, c.want)
			}
			w.awaitClose(ctx, t)
			e.mustProduce(ctx, leader, args(topic, 0, 8, testBatch("third")))
			if n := w.pipes.Load(); n != 2 {
				t.Fatalf("%d produce connections, want 2: a new one after the bad answer", n)
			}
			// Upstream appended all three; only the answer was damaged.
			if got := e.values(ctx, topic, 0); len(got) != 3 {
				t.Fatalf("log holds %q, want first, second and third", got)
			}
		})
	}
}

// An answer that leaves out a batch's partition fails that batch; the
// connection is sound and carries the next one.
func TestPipeAnswerMissingPartition(t *testing.T) {
	const topic = "missing"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, w, leader := startWired(t, ctx, topic, 9, nil)

	e.cluster.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		return kreq.ResponseKind(), nil, true // no topics at all
	})
	if _, err := e.produceOne(ctx, leader, args(topic, 0, 9, testBatch("unanswered"))); err == nil || !strings.Contains(err.Error(), "missing the partition") {
		t.Fatalf("batch left out of the answer: err %v, want one saying the partition is missing", err)
	}
	e.mustProduce(ctx, leader, args(topic, 0, 9, testBatch("third")))
	if n := w.pipes.Load(); n != 1 {
		t.Fatalf("%d produce connections, want the first one still", n)
	}
	if got := e.values(ctx, topic, 0); len(got) != 2 || got[0] != "first" || got[1] != "third" {
		t.Fatalf("log holds %q, want first and third", got)
	}
}

// Upstream that takes a request and never answers it: once the request
// timeout (plus the batch's own timeout, 0 here) has passed, the batch
// fails with a timeout and the connection is given up; the next batch
// goes on a new connection.
func TestPipeUpstreamSilent(t *testing.T) {
	const topic = "silent"
	w := newWire()
	e := startPipeEnvWith(t, func(c *Config) {
		c.Dialer = w.dial
		c.RequestTimeout = time.Second
	}, 1, topic)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader := e.leader(ctx, topic, 0)
	_, release := e.holdFirstProduce()

	a := args(topic, 0, 9, testBatch("unanswered"))
	a.TimeoutMillis = 0
	_, err := e.produceOne(ctx, leader, a)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("batch upstream never answered: err %v, want a timeout", err)
	}
	w.awaitClose(ctx, t)
	release()
	e.mustProduce(ctx, leader, args(topic, 0, 9, testBatch("after")))
	if n := w.pipes.Load(); n != 2 {
		t.Fatalf("%d produce connections, want 2: a new one after the timeout", n)
	}
}
