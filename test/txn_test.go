package test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/internal/testenv"
)

const txnSentinel = "end"

// readUntilSentinels reads topic from the start through meshka with the
// given isolation level until every partition's sentinel record arrives,
// and returns the values before them. A sentinel written after all
// transactions ended marks the end of what there is to read.
func readUntilSentinels(t *testing.T, ctx context.Context, env *testenv.Env, topic string, parts int, level kgo.IsolationLevel) []string {
	t.Helper()
	cl := env.Client(t, kgo.ConsumeTopics(topic), fromStart(), kgo.FetchIsolationLevel(level))
	var out []string
	sentinels := map[int32]bool{}
	for len(sentinels) < parts {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d sentinels of %d, %d records: %v", topic, len(sentinels), parts, len(out), ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == txnSentinel {
				sentinels[r.Partition] = true
				return
			}
			if sentinels[r.Partition] {
				t.Errorf("%s/%d: %q at %d after the sentinel", topic, r.Partition, r.Value, r.Offset)
			}
			out = append(out, string(r.Value))
		})
	}
	return out
}

func writeSentinels(t *testing.T, ctx context.Context, env *testenv.Env, topic string, parts int) {
	t.Helper()
	p := manualProducer(t, env)
	for i := 0; i < parts; i++ {
		if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: int32(i), Value: []byte(txnSentinel)}).FirstErr(); err != nil {
			t.Fatalf("sentinel for %s/%d: %v", topic, i, err)
		}
	}
}

// A consume-transform-produce loop through meshka with franz-go's
// GroupTransactSession: every 7th transaction is aborted on purpose and its
// records are processed again. A read_committed reader of the output sees
// each input record's transform exactly once; a read_uncommitted one also
// sees the aborted attempts, so the aborts really wrote records.
func TestTxnConsumeTransformProduce(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 60*time.Second)
	const in, out, group, parts, n = "txn-in", "txn-out", "txn-grp", 3, 10_000
	admin := env.Client(t)
	createTopic(t, ctx, admin, in, parts, nil)
	createTopic(t, ctx, admin, out, parts, nil)
	produceSeq(t, ctx, manualProducer(t, env), in, parts, 0, n, 500, 0)

	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(env.Addr()),
		kgo.TransactionalID("txn-etl"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		fromStart(),
		kgo.SessionTimeout(groupSession),
		kgo.HeartbeatInterval(groupHeartbeat),
		kgo.DefaultProduceTopic(out),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	done := make(map[int]bool, n) // input values whose transaction committed
	var txns, aborted, notCommitted int
	var mu sync.Mutex
	producedOK := 0 // records acknowledged in any transaction, committed or not
	var produceErrs int
	var firstProduceErr error
	for len(done) < n {
		fs := sess.PollRecords(ctx, 500)
		if ctx.Err() != nil {
			t.Fatalf("%d of %d records committed after %d transactions: %v", len(done), n, txns, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("poll %s/%d: %v", topic, p, err) })
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		txns++
		txn, abort := txns, txns%7 == 0
		var vals []int
		fs.EachRecord(func(r *kgo.Record) {
			v, err := strconv.Atoi(string(r.Value))
			if err != nil {
				t.Fatalf("input %d/%d: value %q", r.Partition, r.Offset, r.Value)
			}
			vals = append(vals, v)
			sess.Produce(ctx, &kgo.Record{Partition: r.Partition, Key: r.Value, Value: []byte("out-" + string(r.Value))}, func(_ *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if produceErrs == 0 {
						firstProduceErr = fmt.Errorf("transaction %d: %w", txn, err)
					}
					produceErrs++
					return
				}
				producedOK++
			})
		})
		if abort {
			// Flushed first, so the aborted records are in the log
			// and read_committed readers must skip them.
			if err := sess.Client().Flush(ctx); err != nil {
				t.Fatalf("flush before abort: %v", err)
			}
		}
		committed, err := sess.End(ctx, kgo.TransactionEndTry(!abort))
		mu.Lock()
		if produceErrs > 0 {
			t.Errorf("%d records failed to produce, first in %v", produceErrs, firstProduceErr)
		}
		mu.Unlock()
		if err != nil {
			t.Fatalf("end transaction %d (commit %v): %v", txns, !abort, err)
		}
		if t.Failed() {
			t.FailNow()
		}
		switch {
		case abort && committed:
			t.Fatalf("transaction %d committed though it was aborted", txns)
		case abort:
			aborted++
		case !committed:
			// The session rewinds; the records come back.
			notCommitted++
			t.Logf("transaction %d with %d records did not commit", txns, len(vals))
		default:
			for _, v := range vals {
				if done[v] {
					t.Errorf("input %d committed by two transactions", v)
				}
				done[v] = true
			}
		}
	}
	sess.Close()
	t.Logf("%d transactions: %d aborted on purpose, %d more did not commit", txns, aborted, notCommitted)
	if aborted == 0 {
		t.Fatal("no transaction was aborted; the test proved nothing")
	}

	writeSentinels(t, ctx, env, out, parts)
	got := readUntilSentinels(t, ctx, env, out, parts, kgo.ReadCommitted())
	seen := make(map[string]int, n)
	for _, v := range got {
		seen[v]++
	}
	missing := 0
	for i := 0; i < n; i++ {
		switch c := seen["out-"+strconv.Itoa(i)]; {
		case c == 0:
			if missing < 10 {
				t.Errorf("transform of input %d never seen by read_committed", i)
			}
			missing++
		case c > 1:
			t.Errorf("transform of input %d seen %d times by read_committed", i, c)
		}
	}
	if len(got) != n {
		t.Errorf("read_committed saw %d records (%d missing), want exactly %d", len(got), missing, n)
	}

	all := readUntilSentinels(t, ctx, env, out, parts, kgo.ReadUncommitted())
	mu.Lock()
	if len(all) != producedOK || len(all) <= n {
		t.Errorf("read_uncommitted saw %d records; %d were produced, %d of them in committed transactions", len(all), producedOK, n)
	}
	mu.Unlock()
	checkCommittedAtEnd(t, ctx, env, group, in)
}

// A plain transactional producer through meshka: a read_committed reader
// through meshka sees the committed transactions, in order, and none of
// the aborted ones; a read_uncommitted reader sees all of them.
func TestTxnProducerCommitAbort(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 40*time.Second)
	const topic = "txn-plain"
	createTopic(t, ctx, env.Client(t), topic, 1, nil)
	p := env.Client(t, kgo.TransactionalID("txn-plain-producer"), kgo.DefaultProduceTopic(topic))
	var want, wantAll []string
	// Odd transactions abort; the last one commits so aborted records
	// sit between committed ones on both sides.
	for k := 0; k < 7; k++ {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var rs []*kgo.Record
		for j := 0; j < 10; j++ {
			v := fmt.Sprintf("%d-%d", k, j)
			rs = append(rs, &kgo.Record{Value: []byte(v)})
			wantAll = append(wantAll, v)
			if k%2 == 0 {
				want = append(want, v)
			}
		}
		if err := p.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce in transaction %d: %v", k, err)
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(k%2 == 0)); err != nil {
			t.Fatalf("end transaction %d: %v", k, err)
		}
	}
	writeSentinels(t, ctx, env, topic, 1)
	if got := readUntilSentinels(t, ctx, env, topic, 1, kgo.ReadCommitted()); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("read_committed saw\n%v\nwant\n%v", got, want)
	}
	if got := readUntilSentinels(t, ctx, env, topic, 1, kgo.ReadUncommitted()); strings.Join(got, " ") != strings.Join(wantAll, " ") {
		t.Errorf("read_uncommitted saw\n%v\nwant\n%v", got, wantAll)
	}
}
