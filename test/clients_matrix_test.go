package test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/meshka/meshka/internal/testenv"
)

// The client matrix (issue #8): every client, old protocol versions and
// new, runs one scenario through a meshka node.
//
//	(a) a few hundred records over 3 partitions, consumed in a consumer
//	    group that commits what it read: upstream then holds the end
//	    offsets as the group's committed offsets;
//	(b) one transactional producer runs three transactions in a row:
//	    commit (records A), abort (records B, acknowledged before the
//	    abort, so they are in the log), and a consume-transform-produce
//	    commit (records C, one per record of an input topic, with the
//	    input group's offsets committed in the transaction);
//	(c) a read_committed reader of the output sees exactly A then C in
//	    each partition, and the input group's committed offsets are the
//	    input's end offsets, through meshka and upstream alike.
//
// The same scenario straight against the upstream brokers is the control:
// a client that fails only through meshka shows a meshka bug. The kafkajs
// script in test/kafkajs runs the scenario too (TestKafkajs).

const (
	matrixParts   = 3
	matrixPlain   = 100 // records per partition in (a)
	matrixTxnRecs = 10  // records per partition in each of A, B and the input
	matrixEnd     = "end"
)

// matrixNames are one run's topics, groups and transactional id.
type matrixNames struct {
	plain, group       string // (a)
	in, out, etl, txid string // (b) and (c)
}

func newMatrixNames(prefix string) matrixNames {
	return matrixNames{
		plain: prefix + "-plain", group: prefix + "-grp",
		in: prefix + "-in", out: prefix + "-out", etl: prefix + "-etl", txid: prefix + "-txn",
	}
}

// matrixRec is a record of the scenario: its partition and value.
type matrixRec struct {
	p int32
	v string
}

// matrixRecs is n records per partition valued tag-<partition>-<i>,
// interleaved across partitions.
func matrixRecs(tag string, n int) []matrixRec {
	var out []matrixRec
	for i := 0; i < n; i++ {
		for p := int32(0); p < matrixParts; p++ {
			out = append(out, matrixRec{p, fmt.Sprintf("%s-%d-%d", tag, p, i)})
		}
	}
	return out
}

func byPartition(rs []matrixRec) map[int32][]string {
	out := map[int32][]string{}
	for _, r := range rs {
		out[r.p] = append(out[r.p], r.v)
	}
	return out
}

// transform is the consume-transform-produce step: the output record of
// an input record, to the same partition.
func transform(r matrixRec) matrixRec { return matrixRec{r.p, "C-" + r.v} }

// matrixTxn is what a client's transactions step needs: the names, the
// records, and a check the client runs once it has consumed the input and
// before its third transaction, so offsets committed outside the
// transaction cannot pass for offsets committed in it.
type matrixTxn struct {
	matrixNames
	a, b    []matrixRec
	inputs  int // input records to consume before the third transaction
	beforeC func()
}

// matrixClient is one client (at one protocol version) under test. Every
// method fails the test on any error.
type matrixClient interface {
	// produce writes the records, in order per partition.
	produce(t *testing.T, ctx context.Context, seeds []string, topic string, rs []matrixRec)
	// consumeGroup consumes n records in group, commits what it read and
	// leaves the group; it returns the values read by partition.
	consumeGroup(t *testing.T, ctx context.Context, seeds []string, topic, group string, n int) map[int32][]string
	// transactions runs (b): commit A, abort B, then consume the input in
	// group etl and commit C (the inputs transformed) with the group's
	// offsets.
	transactions(t *testing.T, ctx context.Context, seeds []string, s matrixTxn)
	// readCommitted reads every partition of topic read_committed from
	// the start until its sentinel and returns the values before them.
	readCommitted(t *testing.T, ctx context.Context, seeds []string, topic string) map[int32][]string
}

var matrixClients = []struct {
	name   string
	client matrixClient
}{
	{"franz-go-latest", franzMatrix{}},
	{"franz-go-2.8", franzMatrix{kversion.V2_8_0()}},
	{"franz-go-3.0", franzMatrix{kversion.V3_0_0()}},
	{"franz-go-3.7", franzMatrix{kversion.V3_7_0()}},
	// sarama's default version is 2.8.0.0 (in v1.61); both are listed so
	// a change of the default shows up as a new client here.
	{"sarama-default", saramaMatrix{}},
	{"sarama-2.8", saramaMatrix{version: sarama.V2_8_0_0, set: true}},
	// The version the other sarama tests use.
	{"sarama-4.0", saramaMatrix{version: sarama.V4_0_0_0, set: true}},
}

// The subtests run one after another: meshka nodes started or stopped
// concurrently race on protoactor's global gRPC logger.
func TestClientMatrix(t *testing.T) {
	for _, c := range matrixClients {
		t.Run(c.name, func(t *testing.T) { runMatrix(t, c.name, c.client, false) })
	}
}

// TestClientMatrixDirect is the control: the same scenario with the same
// clients straight against the upstream brokers. A client that passes here
// and fails in TestClientMatrix shows a meshka bug, not a wrong scenario.
func TestClientMatrixDirect(t *testing.T) {
	for _, c := range matrixClients {
		t.Run(c.name, func(t *testing.T) { runMatrix(t, c.name, c.client, true) })
	}
}

// runMatrix runs the scenario with one client on its own environment,
// through meshka or, when direct, straight against the upstream brokers.
func runMatrix(t *testing.T, name string, c matrixClient, direct bool) {
	env := testenv.Start(t)
	ctx := timeout(t, 45*time.Second)
	seeds := []string{env.Addr()}
	via := env.Client(t)
	if direct {
		seeds = env.Upstream.ListenAddrs()
		via = env.DirectClient(t)
	}
	up := env.DirectClient(t)
	// Writes the input and the sentinels, which are not what a client
	// under test is tested on.
	writer := franzMatrix{}.client(t, seeds)
	n := newMatrixNames("matrix-" + name)
	for _, topic := range []string{n.plain, n.in, n.out} {
		createTopic(t, ctx, via, topic, matrixParts, nil)
	}

	// (a)
	plain := matrixRecs("a", matrixPlain)
	c.produce(t, ctx, seeds, n.plain, plain)
	got := c.consumeGroup(t, ctx, seeds, n.plain, n.group, len(plain))
	checkPartitions(t, "(a) group "+n.group+" consumed", got, byPartition(plain))
	checkGroupAtEnd(t, ctx, up, n.group, n.plain, matrixPlain)

	// (b)
	inputs := matrixRecs("in", matrixTxnRecs)
	produceMatrix(t, ctx, writer, n.in, inputs)
	a, b := matrixRecs("A", matrixTxnRecs), matrixRecs("B", matrixTxnRecs)
	c.transactions(t, ctx, seeds, matrixTxn{
		matrixNames: n, a: a, b: b, inputs: len(inputs),
		beforeC: func() {
			// Nothing may be committed for the input group before
			// the transaction that carries its offsets.
			if got := committedOrNone(t, ctx, up, n.etl, n.in); len(got) > 0 {
				t.Fatalf("(b) group %s has committed offsets %v before the transaction that sends them", n.etl, got)
			}
		},
	})

	// (c)
	writeMatrixSentinels(t, ctx, writer, n.out)
	want := byPartition(a)
	for _, r := range inputs {
		want[r.p] = append(want[r.p], transform(r).v)
	}
	checkPartitions(t, "(c) read_committed of "+n.out, c.readCommitted(t, ctx, seeds, n.out), want)
	// The offsets sent in the transaction, as clients see them (through
	// the same address) and as upstream stores them.
	checkGroupSettles(t, ctx, via, n.etl, n.in, matrixTxnRecs)
	checkGroupSettles(t, ctx, up, n.etl, n.in, matrixTxnRecs)
}

// checkPartitions fails unless got holds exactly want's values in want's
// order in every partition, and names what is wrong: records of the
// aborted transaction, duplicates, missing records or a wrong order.
func checkPartitions(t *testing.T, what string, got, want map[int32][]string) {
	t.Helper()
	for _, p := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: partition %d has records %v, want none", what, p, got[p])
		}
	}
	for _, p := range slices.Sorted(maps.Keys(want)) {
		g, w := got[p], want[p]
		if slices.Equal(g, w) {
			continue
		}
		var problems []string
		count := map[string]int{}
		for _, v := range g {
			count[v]++
		}
		var aborted, dups []string
		for _, v := range g {
			if strings.HasPrefix(v, "B-") {
				aborted = append(aborted, v)
			}
		}
		for v, k := range count {
			if k > 1 {
				dups = append(dups, fmt.Sprintf("%s x%d", v, k))
			}
		}
		var missing []string
		for _, v := range w {
			if count[v] == 0 {
				missing = append(missing, v)
			}
		}
		if len(aborted) > 0 {
			problems = append(problems, fmt.Sprintf("%d records of the aborted transaction %v", len(aborted), aborted))
		}
		if len(dups) > 0 {
			slices.Sort(dups)
			problems = append(problems, fmt.Sprintf("duplicates %v", dups))
		}
		if len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("missing %v", missing))
		}
		if len(problems) == 0 {
			problems = append(problems, "out of order")
		}
		t.Errorf("%s: partition %d: %s\n got %v\nwant %v", what, p, strings.Join(problems, "; "), g, w)
	}
}

// checkGroupAtEnd fails unless the group's committed offsets on topic,
// read through cl, are the end offsets, perPart in every partition.
func checkGroupAtEnd(t *testing.T, ctx context.Context, cl *kgo.Client, group, topic string, perPart int64) {
	t.Helper()
	if got, end := groupAtEnd(t, ctx, cl, group, topic, perPart); !maps.Equal(got, end) {
		t.Fatalf("group %s: committed offsets on %s %v, want the end offsets %v", group, topic, got, end)
	}
}

// checkGroupSettles is checkGroupAtEnd for offsets committed in a
// transaction, which Kafka makes visible once the transaction's markers are
// written, after EndTxn answered: a mismatch is asked again until they
// show, for as long as ctx allows.
func checkGroupSettles(t *testing.T, ctx context.Context, cl *kgo.Client, group, topic string, perPart int64) {
	t.Helper()
	for {
		got, end := groupAtEnd(t, ctx, cl, group, topic, perPart)
		if maps.Equal(got, end) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s: committed offsets on %s %v, want the end offsets %v (%v)", group, topic, got, end, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// groupAtEnd is the group's committed offsets on topic and the topic's end
// offsets, which must be perPart in every partition.
func groupAtEnd(t *testing.T, ctx context.Context, cl *kgo.Client, group, topic string, perPart int64) (committed, end map[int32]int64) {
	t.Helper()
	end = endOffsets(t, ctx, cl, topic)
	want := map[int32]int64{}
	for p := int32(0); p < matrixParts; p++ {
		want[p] = perPart
	}
	if !maps.Equal(end, want) {
		t.Fatalf("%s: end offsets %v, want %v", topic, end, want)
	}
	return committedOrNone(t, ctx, cl, group, topic), end
}

// committedOrNone is committed, where a group upstream has never heard of
// (GROUP_ID_NOT_FOUND) has no offsets.
func committedOrNone(t *testing.T, ctx context.Context, cl *kgo.Client, group, topic string) map[int32]int64 {
	t.Helper()
	got, err := fetchCommitted(ctx, cl, group, topic)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{}
	}
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// produceMatrix writes records with cl, a franz-go client with the manual
// partitioner.
func produceMatrix(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, rs []matrixRec) {
	t.Helper()
	var krs []*kgo.Record
	for _, r := range rs {
		krs = append(krs, &kgo.Record{Topic: topic, Partition: r.p, Value: []byte(r.v)})
	}
	if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// writeMatrixSentinels ends every partition of topic with a sentinel, after
// every transaction ended, so a reader knows when it has read everything.
func writeMatrixSentinels(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) {
	t.Helper()
	var rs []matrixRec
	for p := int32(0); p < matrixParts; p++ {
		rs = append(rs, matrixRec{p, matrixEnd})
	}
	produceMatrix(t, ctx, cl, topic, rs)
}

// sentinelReader collects values per partition until every partition's
// sentinel arrived.
type sentinelReader struct {
	got  map[int32][]string
	ends map[int32]bool
	errs []string
}

func newSentinelReader() *sentinelReader {
	return &sentinelReader{got: map[int32][]string{}, ends: map[int32]bool{}}
}

func (s *sentinelReader) add(p int32, offset int64, v string) {
	switch {
	case s.ends[p]:
		s.errs = append(s.errs, fmt.Sprintf("partition %d: %q at offset %d after the sentinel", p, v, offset))
	case v == matrixEnd:
		s.ends[p] = true
	default:
		s.got[p] = append(s.got[p], v)
	}
}

func (s *sentinelReader) done() bool { return len(s.ends) == matrixParts }

func (s *sentinelReader) check(t *testing.T, topic string) map[int32][]string {
	t.Helper()
	for _, e := range s.errs {
		t.Errorf("read %s: %s", topic, e)
	}
	return s.got
}

// franz-go, at its newest versions or capped at a Kafka release's.
type franzMatrix struct{ max *kversion.Versions }

func (f franzMatrix) client(t *testing.T, seeds []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(f.opts(seeds, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (f franzMatrix) opts(seeds []string, opts ...kgo.Opt) []kgo.Opt {
	all := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner())}
	if f.max != nil {
		all = append(all, kgo.MaxVersions(f.max))
	}
	return append(all, opts...)
}

func franzRecords(topic string, rs []matrixRec) []*kgo.Record {
	out := make([]*kgo.Record, len(rs))
	for i, r := range rs {
		out[i] = &kgo.Record{Topic: topic, Partition: r.p, Value: []byte(r.v)}
	}
	return out
}

func (f franzMatrix) produce(t *testing.T, ctx context.Context, seeds []string, topic string, rs []matrixRec) {
	t.Helper()
	if err := f.client(t, seeds).ProduceSync(ctx, franzRecords(topic, rs)...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// franzPoll polls until n records arrived and returns them by partition.
func franzPoll(t *testing.T, ctx context.Context, poll func(context.Context) kgo.Fetches, what string, n int) map[int32][]string {
	t.Helper()
	got := map[int32][]string{}
	for read := 0; read < n; {
		fs := poll(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: %d of %d records: %v", what, read, n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("%s: fetch %s/%d: %v", what, topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], string(r.Value))
			read++
		})
	}
	return got
}

func (f franzMatrix) consumeGroup(t *testing.T, ctx context.Context, seeds []string, topic, group string, n int) map[int32][]string {
	t.Helper()
	cl := f.client(t, seeds,
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), fromStart(), kgo.DisableAutoCommit(),
		kgo.SessionTimeout(groupSession), kgo.HeartbeatInterval(groupHeartbeat))
	got := franzPoll(t, ctx, cl.PollFetches, "consume "+topic+" in group "+group, n)
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit offsets of %s: %v", group, err)
	}
	cl.Close() // leaves the group
	return got
}

// transactions uses one GroupTransactSession: its client is the
// transactional producer of all three transactions and the consumer of
// the input, and End commits the consumed offsets in the transaction.
func (f franzMatrix) transactions(t *testing.T, ctx context.Context, seeds []string, s matrixTxn) {
	t.Helper()
	assigned := make(chan struct{})
	var once sync.Once
	sess, err := kgo.NewGroupTransactSession(f.opts(seeds,
		kgo.TransactionalID(s.txid),
		kgo.ConsumerGroup(s.etl), kgo.ConsumeTopics(s.in), fromStart(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets(),
		kgo.SessionTimeout(groupSession), kgo.HeartbeatInterval(groupHeartbeat),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			once.Do(func() { close(assigned) })
		}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	// A revocation while a transaction is open makes End abort it. The
	// session is the group's only member, so once it has its partitions
	// nothing revokes them, and A and B cannot be hit by that.
	select {
	case <-assigned:
	case <-ctx.Done():
		t.Fatalf("group %s: no partitions assigned: %v", s.etl, ctx.Err())
	}

	end := func(txn string, rs []matrixRec, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := sess.Begin(); err != nil {
			t.Fatalf("begin transaction %s: %v", txn, err)
		}
		// ProduceSync returns once upstream acknowledged the records,
		// so aborted ones too are in the log.
		if err := sess.ProduceSync(ctx, franzRecords(s.out, rs)...).FirstErr(); err != nil {
			t.Fatalf("produce in transaction %s: %v", txn, err)
		}
		committed, err := sess.End(ctx, commit)
		if err != nil {
			t.Fatalf("end transaction %s (commit %v): %v", txn, bool(commit), err)
		}
		if committed != bool(commit) {
			t.Fatalf("transaction %s: committed %v, want %v", txn, committed, bool(commit))
		}
	}
	end("A", s.a, kgo.TryCommit)
	end("B", s.b, kgo.TryAbort)

	got := franzPoll(t, ctx, sess.PollFetches, "consume "+s.in+" in group "+s.etl, s.inputs)
	s.beforeC()
	var cs []matrixRec
	for _, p := range slices.Sorted(maps.Keys(got)) {
		for _, v := range got[p] {
			cs = append(cs, transform(matrixRec{p, v}))
		}
	}
	end("C", cs, kgo.TryCommit)
}

func (f franzMatrix) readCommitted(t *testing.T, ctx context.Context, seeds []string, topic string) map[int32][]string {
	t.Helper()
	parts := map[int32]kgo.Offset{}
	for p := int32(0); p < matrixParts; p++ {
		parts[p] = kgo.NewOffset().AtStart()
	}
	cl := f.client(t, seeds,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	s := newSentinelReader()
	for !s.done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s read_committed: sentinels of %v only, read %v: %v", topic, s.ends, s.got, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("read %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { s.add(r.Partition, r.Offset, string(r.Value)) })
	}
	return s.check(t, topic)
}

// IBM/sarama at its default version or a given one.
type saramaMatrix struct {
	version sarama.KafkaVersion
	set     bool
}

func (s saramaMatrix) config() *sarama.Config {
	cfg := sarama.NewConfig()
	if s.set {
		cfg.Version = s.version
	}
	cfg.ClientID = "meshka-matrix"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Session.Timeout = groupSession
	cfg.Consumer.Group.Heartbeat.Interval = groupHeartbeat
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Metadata.Retry.Max = 10
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg
}

func saramaMessages(topic string, rs []matrixRec) []*sarama.ProducerMessage {
	out := make([]*sarama.ProducerMessage, len(rs))
	for i, r := range rs {
		out[i] = &sarama.ProducerMessage{Topic: topic, Partition: r.p, Value: sarama.StringEncoder(r.v)}
	}
	return out
}

// saramaClose closes a sarama producer or consumer, failing the test on
// an error.
func saramaClose(t *testing.T, what string, c interface{ Close() error }) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("close sarama %s: %v", what, err)
	}
}

// saramaSendErr names the first failed record of a SendMessages error.
func saramaSendErr(err error) error {
	var perrs sarama.ProducerErrors
	if errors.As(err, &perrs) && len(perrs) > 0 {
		return fmt.Errorf("%d records failed, first: %w", len(perrs), perrs[0].Err)
	}
	return err
}

func (s saramaMatrix) produce(t *testing.T, ctx context.Context, seeds []string, topic string, rs []matrixRec) {
	t.Helper()
	p, err := sarama.NewSyncProducer(seeds, s.config())
	if err != nil {
		t.Fatalf("sarama producer: %v", err)
	}
	defer saramaClose(t, "producer", p)
	if err := p.SendMessages(saramaMessages(topic, rs)); err != nil {
		t.Fatalf("produce to %s: %v", topic, saramaSendErr(err))
	}
}

// saramaCollector is a ConsumerGroupHandler that records what it reads and
// reports when it has read want records.
type saramaCollector struct {
	topic string
	want  int
	mark  bool // MarkMessage every record, for a later Commit
	full  chan struct{}

	mu      sync.Mutex
	session sarama.ConsumerGroupSession
	got     map[int32][]string
	last    map[int32]int64 // offset of the last record read
	read    int
}

func newSaramaCollector(topic string, want int, mark bool) *saramaCollector {
	return &saramaCollector{topic: topic, want: want, mark: mark, full: make(chan struct{}),
		got: map[int32][]string{}, last: map[int32]int64{}}
}

func (h *saramaCollector) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.session = s
	return nil
}

func (h *saramaCollector) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaCollector) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			// Marked before counted: once the count is full, every
			// record read is marked.
			if h.mark {
				s.MarkMessage(m, "")
			}
			h.mu.Lock()
			h.got[m.Partition] = append(h.got[m.Partition], string(m.Value))
			h.last[m.Partition] = m.Offset
			h.read++
			if h.read == h.want {
				close(h.full)
			}
			h.mu.Unlock()
		case <-s.Context().Done():
			return nil
		}
	}
}

// saramaGroup is a running sarama consumer group member.
type saramaGroup struct {
	g    sarama.ConsumerGroup
	stop context.CancelFunc
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []string
}

func (s saramaMatrix) startGroup(t *testing.T, seeds []string, group string, h *saramaCollector) *saramaGroup {
	t.Helper()
	g, err := sarama.NewConsumerGroup(seeds, group, s.config())
	if err != nil {
		t.Fatalf("sarama consumer group %s: %v", group, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	sg := &saramaGroup{g: g, stop: stop}
	sg.wg.Add(2)
	go func() {
		defer sg.wg.Done()
		for err := range g.Errors() {
			sg.mu.Lock()
			sg.errs = append(sg.errs, err.Error())
			sg.mu.Unlock()
		}
	}()
	go func() {
		defer sg.wg.Done()
		// Consume returns at every rebalance and is called again.
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{h.topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				sg.mu.Lock()
				sg.errs = append(sg.errs, "consume: "+err.Error())
				sg.mu.Unlock()
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(func() { sg.close(t) })
	return sg
}

// waitFull waits until the collector read what it wants or ctx ends.
func (sg *saramaGroup) waitFull(t *testing.T, ctx context.Context, h *saramaCollector, group string) {
	t.Helper()
	select {
	case <-h.full:
	case <-ctx.Done():
		h.mu.Lock()
		read := h.read
		h.mu.Unlock()
		sg.mu.Lock()
		errs := slices.Clone(sg.errs)
		sg.mu.Unlock()
		t.Fatalf("group %s: read %d of %d records of %s: %v (group errors: %v)", group, read, h.want, h.topic, ctx.Err(), errs)
	}
}

// close stops the member (it leaves the group) and fails the test on any
// error the group reported. Only the first call does anything.
func (sg *saramaGroup) close(t *testing.T) {
	t.Helper()
	if sg.stop == nil {
		return
	}
	sg.stop()
	sg.stop = nil
	if err := sg.g.Close(); err != nil {
		t.Errorf("close sarama consumer group: %v", err)
	}
	sg.wg.Wait()
	for _, e := range sg.errs {
		t.Errorf("sarama consumer group error: %s", e)
	}
}

func (s saramaMatrix) consumeGroup(t *testing.T, ctx context.Context, seeds []string, topic, group string, n int) map[int32][]string {
	t.Helper()
	h := newSaramaCollector(topic, n, true)
	sg := s.startGroup(t, seeds, group, h)
	sg.waitFull(t, ctx, h, group)
	h.mu.Lock()
	session := h.session
	got := h.got
	h.mu.Unlock()
	// Synchronous; a failed commit is reported on Errors, which close
	// turns into a test failure.
	session.Commit()
	sg.close(t)
	return got
}

func (s saramaMatrix) transactions(t *testing.T, ctx context.Context, seeds []string, txn matrixTxn) {
	t.Helper()
	cfg := s.config()
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = txn.txid
	cfg.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer(seeds, cfg)
	if err != nil {
		t.Fatalf("sarama transactional producer: %v", err)
	}
	defer saramaClose(t, "producer", p)

	send := func(name string, rs []matrixRec) {
		t.Helper()
		if err := p.BeginTxn(); err != nil {
			t.Fatalf("begin transaction %s: %v", name, err)
		}
		// SendMessages returns once upstream acknowledged the
		// records, so aborted ones too are in the log.
		if err := p.SendMessages(saramaMessages(txn.out, rs)); err != nil {
			t.Fatalf("produce in transaction %s: %v", name, saramaSendErr(err))
		}
	}
	send("A", txn.a)
	if err := p.CommitTxn(); err != nil {
		t.Fatalf("commit transaction A: %v", err)
	}
	send("B", txn.b)
	if err := p.AbortTxn(); err != nil {
		t.Fatalf("abort transaction B: %v", err)
	}

	// Consume-transform-produce: the member stays in the group while
	// the transaction carries its offsets, as in a processing loop.
	h := newSaramaCollector(txn.in, txn.inputs, false)
	sg := s.startGroup(t, seeds, txn.etl, h)
	sg.waitFull(t, ctx, h, txn.etl)
	h.mu.Lock()
	got, last := h.got, h.last
	h.mu.Unlock()
	txn.beforeC()
	var cs []matrixRec
	offsets := map[string][]*sarama.PartitionOffsetMetadata{}
	for _, part := range slices.Sorted(maps.Keys(got)) {
		for _, v := range got[part] {
			cs = append(cs, transform(matrixRec{part, v}))
		}
		offsets[txn.in] = append(offsets[txn.in], &sarama.PartitionOffsetMetadata{Partition: part, Offset: last[part] + 1, LeaderEpoch: -1})
	}
	send("C", cs)
	if err := p.AddOffsetsToTxn(offsets, txn.etl); err != nil {
		t.Fatalf("add offsets of %s to transaction C: %v", txn.etl, err)
	}
	if err := p.CommitTxn(); err != nil {
		t.Fatalf("commit transaction C: %v", err)
	}
	sg.close(t)
}

func (s saramaMatrix) readCommitted(t *testing.T, ctx context.Context, seeds []string, topic string) map[int32][]string {
	t.Helper()
	cfg := s.config()
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	consumer, err := sarama.NewConsumer(seeds, cfg)
	if err != nil {
		t.Fatalf("sarama consumer: %v", err)
	}
	defer saramaClose(t, "consumer", consumer)
	r := newSentinelReader()
	for p := int32(0); p < matrixParts; p++ {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume %s/%d: %v", topic, p, err)
		}
		for !r.ends[p] {
			select {
			case m := <-pc.Messages():
				r.add(p, m.Offset, string(m.Value))
			case err := <-pc.Errors():
				t.Fatalf("read %s/%d read_committed: %v", topic, p, err)
			case <-ctx.Done():
				t.Fatalf("read %s/%d read_committed: no sentinel after %v: %v", topic, p, r.got[p], ctx.Err())
			}
		}
		// Anything delivered after the sentinel would be a record
		// past the end; the partition consumer stops here.
		pc.AsyncClose()
	}
	return r.check(t, topic)
}
