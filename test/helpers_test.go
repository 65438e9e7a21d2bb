package test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// createTopic creates a topic through the given client (meshka or direct).
func createTopic(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, configs, topic)
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	if err := resp.Error(); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// consumeN reads exactly n records (or fails) with a client already
// configured to consume.
func consumeN(t *testing.T, ctx context.Context, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	if len(out) != n {
		t.Fatalf("consumed %d records, want %d", len(out), n)
	}
	return out
}

func fromStart() kgo.Opt { return kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()) }

// failed is a produce callback that fails the test for a record upstream
// did not take. Produce calls it from the client's goroutines, where
// t.Errorf is safe.
func failed(t *testing.T) func(*kgo.Record, error) {
	return func(r *kgo.Record, err error) {
		if err != nil {
			t.Errorf("produce to %s/%d: %v", r.Topic, r.Partition, err)
		}
	}
}
