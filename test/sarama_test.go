package test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/internal/testenv"
)

// saramaConfig is a sarama client configuration for talking to meshka. The
// Kafka version is recent so sarama negotiates the newest Produce and Fetch
// versions meshka advertises rather than the legacy ones.
func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.ClientID = "meshka-sarama-test"
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	// Errors would otherwise only be logged, and a broken stream would look
	// like a consumer that is merely slow.
	cfg.Consumer.Return.Errors = true
	cfg.Metadata.Retry.Max = 10
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg
}

func newSaramaAdmin(t *testing.T, addr string) sarama.ClusterAdmin {
	t.Helper()
	admin, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig())
	if err != nil {
		t.Fatalf("sarama cluster admin: %v", err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	return admin
}

func saramaCreateTopic(t *testing.T, admin sarama.ClusterAdmin, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	detail := &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs}
	if err := admin.CreateTopic(topic, detail, false); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// saramaConsumePartition reads want records of one partition from the
// oldest offset, failing on any consumer error.
func saramaConsumePartition(ctx context.Context, t *testing.T, consumer sarama.Consumer, topic string, partition int32, want int) ([]*sarama.ConsumerMessage, int64) {
	t.Helper()
	pc, err := consumer.ConsumePartition(topic, partition, sarama.OffsetOldest)
	if err != nil {
		t.Fatalf("consume %s/%d: %v", topic, partition, err)
	}
	defer pc.AsyncClose()
	var got []*sarama.ConsumerMessage
	for len(got) < want {
		select {
		case m := <-pc.Messages():
			got = append(got, m)
		case err := <-pc.Errors():
			t.Fatalf("consume %s/%d after %d records: %v", topic, partition, len(got), err)
		case <-ctx.Done():
			t.Fatalf("consume %s/%d: got %d of %d records: %v", topic, partition, len(got), want, ctx.Err())
		}
	}
	return got, pc.HighWaterMarkOffset()
}

func TestSaramaProduceConsumeCodecs(t *testing.T) {
	env := testenv.Start(t)
	addr := env.Addr()
	admin := newSaramaAdmin(t, addr)
	codecs := []struct {
		name  string
		codec sarama.CompressionCodec
		attr  uint8 // the codec in a record batch's attributes
	}{
		{"none", sarama.CompressionNone, 0},
		{"gzip", sarama.CompressionGZIP, 1},
		{"snappy", sarama.CompressionSnappy, 2},
		{"lz4", sarama.CompressionLZ4, 3},
		{"zstd", sarama.CompressionZSTD, 4},
	}
	const n = 200
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			topic := "sarama-codec-" + c.name
			saramaCreateTopic(t, admin, topic, 3, nil)

			cfg := saramaConfig()
			cfg.Producer.Compression = c.codec
			producer, err := sarama.NewSyncProducer([]string{addr}, cfg)
			if err != nil {
				t.Fatalf("sync producer: %v", err)
			}
			defer producer.Close()

			// Values repeat a phrase so compressed batches really are
			// smaller than their records, and carry the index so a
			// swapped or duplicated record cannot go unnoticed.
			msgs := make([]*sarama.ProducerMessage, n)
			for i := range msgs {
				msgs[i] = &sarama.ProducerMessage{
					Topic:   topic,
					Key:     sarama.StringEncoder(fmt.Sprintf("key-%03d", i)),
					Value:   sarama.StringEncoder(fmt.Sprintf("value-%03d-%s", i, strings.Repeat(c.name, 20))),
					Headers: []sarama.RecordHeader{{Key: []byte("idx"), Value: []byte(strconv.Itoa(i))}},
				}
			}
			if err := producer.SendMessages(msgs); err != nil {
				var perrs sarama.ProducerErrors
				if errors.As(err, &perrs) && len(perrs) > 0 {
					t.Fatalf("produce: %d of %d records failed, first: %v", len(perrs), n, perrs[0].Err)
				}
				t.Fatalf("produce: %v", err)
			}

			type placement struct {
				partition int32
				offset    int64
			}
			sent := make(map[string]placement, n) // by key
			perPartition := map[int32]int{}
			for _, m := range msgs {
				k, _ := m.Key.Encode()
				sent[string(k)] = placement{m.Partition, m.Offset}
				perPartition[m.Partition]++
			}

			consumer, err := sarama.NewConsumer([]string{addr}, saramaConfig())
			if err != nil {
				t.Fatalf("consumer: %v", err)
			}
			defer consumer.Close()
			parts, err := consumer.Partitions(topic)
			if err != nil {
				t.Fatalf("partitions: %v", err)
			}
			slices.Sort(parts)
			if !slices.Equal(parts, []int32{0, 1, 2}) {
				t.Fatalf("partitions of %s = %v, want [0 1 2]", topic, parts)
			}

			seen := make(map[int]bool, n)
			for _, p := range parts {
				want := perPartition[p]
				got, hwm := saramaConsumePartition(ctx, t, consumer, topic, p, want)
				// A fresh topic starts at 0 and nothing else writes to
				// it, so offsets must run 0..want-1 with nothing after.
				if hwm != int64(want) {
					t.Errorf("partition %d: high watermark %d, want %d", p, hwm, want)
				}
				for j, m := range got {
					if m.Offset != int64(j) {
						t.Errorf("partition %d: record %d has offset %d, want %d", p, j, m.Offset, j)
					}
					key := string(m.Key)
					var i int
					if _, err := fmt.Sscanf(key, "key-%03d", &i); err != nil || i < 0 || i >= n {
						t.Errorf("partition %d offset %d: unexpected key %q", p, m.Offset, key)
						continue
					}
					if seen[i] {
						t.Errorf("key %q delivered twice", key)
					}
					seen[i] = true
					if pl := sent[key]; pl.partition != p || pl.offset != m.Offset {
						t.Errorf("key %q read at %d/%d, producer was told %d/%d", key, p, m.Offset, pl.partition, pl.offset)
					}
					if want := fmt.Sprintf("value-%03d-%s", i, strings.Repeat(c.name, 20)); string(m.Value) != want {
						t.Errorf("key %q: value %q, want %q", key, m.Value, want)
					}
					if len(m.Headers) != 1 || string(m.Headers[0].Key) != "idx" || string(m.Headers[0].Value) != strconv.Itoa(i) {
						t.Errorf("key %q: headers %s, want [idx=%d]", key, saramaHeaders(m.Headers), i)
					}
				}
			}
			if len(seen) != n {
				t.Errorf("consumed %d distinct records, want %d", len(seen), n)
			}
			checkStoredCodec(ctx, t, env, topic, 3, n, c.attr)
		})
	}
}

// checkStoredCodec reads the topic straight from upstream and checks that
// every record sits in a batch compressed with the codec the client was
// configured for: a client that silently fell back to plain batches would
// otherwise pass a codec test without compressing anything.
func checkStoredCodec(ctx context.Context, t *testing.T, env *testenv.Env, topic string, partitions int32, n int, want uint8) {
	t.Helper()
	offsets := map[int32]kgo.Offset{}
	for p := int32(0); p < partitions; p++ {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl := env.DirectClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	defer cl.Close()
	byCodec := map[uint8]int{}
	for got := 0; got < n; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s from upstream: %d of %d records: %v", topic, got, n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("read %s/%d from upstream: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			byCodec[r.Attrs.CompressionType()]++
			got++
		})
	}
	if byCodec[want] != n || len(byCodec) != 1 {
		t.Errorf("%s: records by batch codec %v, want all %d with codec %d", topic, byCodec, n, want)
	}
}

func saramaHeaders(hs []*sarama.RecordHeader) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = string(h.Key) + "=" + string(h.Value)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestSaramaClusterAdmin(t *testing.T) {
	env := testenv.Start(t)
	admin := newSaramaAdmin(t, env.Addr())
	const topic = "sarama-admin"
	// A non-default value shows the configs come from the topic rather
	// than a canned list of defaults.
	retention := "3600000"
	saramaCreateTopic(t, admin, topic, 3, map[string]*string{"retention.ms": &retention})

	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	detail, ok := topics[topic]
	if !ok {
		t.Fatalf("list topics does not show %s: %v", topic, slices.Sorted(maps.Keys(topics)))
	}
	if detail.NumPartitions != 3 {
		t.Errorf("list topics: %s has %d partitions, want 3", topic, detail.NumPartitions)
	}

	metas, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		t.Fatalf("describe topics: %v", err)
	}
	if len(metas) != 1 {
		t.Fatalf("describe topics: %d topics, want 1", len(metas))
	}
	if m := metas[0]; m.Err != sarama.ErrNoError || m.Name != topic || len(m.Partitions) != 3 {
		t.Errorf("describe topics: name %q err %v with %d partitions, want %q, no error, 3 partitions", m.Name, m.Err, len(m.Partitions), topic)
	}

	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		t.Fatalf("describe config: %v", err)
	}
	byName := map[string]string{}
	for _, e := range entries {
		byName[e.Name] = e.Value
	}
	if got, ok := byName["retention.ms"]; !ok || got != retention {
		t.Errorf("describe config: retention.ms = %q (present %v), want %q", got, ok, retention)
	}
	if _, ok := byName["cleanup.policy"]; !ok {
		t.Errorf("describe config: no cleanup.policy among %d entries", len(entries))
	}

	if err := admin.DeleteTopic(topic); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	// Deletion completes asynchronously in Kafka, so a listing right
	// after the response may still show the topic for a moment.
	ctx := timeout(t, time.Minute)
	for {
		topics, err := admin.ListTopics()
		if err != nil {
			t.Fatalf("list topics after delete: %v", err)
		}
		if _, ok := topics[topic]; !ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%s still listed after delete: %v", topic, ctx.Err())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func TestSaramaIdempotentProducer(t *testing.T) {
	env := testenv.Start(t)
	addr := env.Addr()
	const topic = "sarama-idempotent"
	saramaCreateTopic(t, newSaramaAdmin(t, addr), topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	cfg := saramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 10
	// Capped batches make thousands of records span many produce
	// requests, each carrying its own producer sequence.
	cfg.Producer.Flush.MaxMessages = 100
	producer, err := sarama.NewAsyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("idempotent producer: %v", err)
	}
	closed := false
	defer func() {
		// Close waits for records in flight, which a failed run may
		// never get answers for.
		if !closed {
			producer.AsyncClose()
		}
	}()

	const n = 5000
	go func() {
		for i := 0; i < n; i++ {
			select {
			case producer.Input() <- &sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(strconv.Itoa(i))}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for acked := 0; acked < n; acked++ {
		select {
		case m := <-producer.Successes():
			v, _ := m.Value.Encode()
			// One partition and one request in flight: acknowledgements
			// come back in send order at consecutive offsets.
			if string(v) != strconv.Itoa(acked) || m.Partition != 0 || m.Offset != int64(acked) {
				t.Fatalf("ack %d: value %s at %d/%d, want value %d at 0/%d", acked, v, m.Partition, m.Offset, acked, acked)
			}
		case perr := <-producer.Errors():
			t.Fatalf("produce after %d acks: %v", acked, perr.Err)
		case <-ctx.Done():
			t.Fatalf("produce: %d of %d acknowledged: %v", acked, n, ctx.Err())
		}
	}
	closed = true
	if err := producer.Close(); err != nil {
		t.Errorf("close producer: %v", err)
	}

	consumer, err := sarama.NewConsumer([]string{addr}, saramaConfig())
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer consumer.Close()
	got, hwm := saramaConsumePartition(ctx, t, consumer, topic, 0, n)
	if hwm != n {
		t.Errorf("high watermark %d, want %d", hwm, n)
	}
	for i, m := range got {
		if m.Offset != int64(i) || string(m.Value) != strconv.Itoa(i) {
			t.Fatalf("record %d: value %q at offset %d, want value %d at offset %d", i, m.Value, m.Offset, i, i)
		}
	}
}
