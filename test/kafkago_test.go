package test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/meshka/meshka/internal/testenv"
)

// kafkaGoCreateTopic creates a topic the way kafka-go users do: through a
// connection to the controller the cluster names in its metadata, which
// for meshka is meshka itself.
func kafkaGoCreateTopic(ctx context.Context, t *testing.T, addr, topic string, partitions int) {
	t.Helper()
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	controller, err := conn.Controller()
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	caddr := net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port))
	if caddr != addr {
		t.Errorf("controller is %s, want meshka at %s", caddr, addr)
	}
	cc, err := kafka.DialContext(ctx, "tcp", caddr)
	if err != nil {
		t.Fatalf("dial controller %s: %v", caddr, err)
	}
	defer cc.Close()
	if err := cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

func TestKafkaGoWriterReaderCodecs(t *testing.T) {
	env := testenv.Start(t)
	addr := env.Addr()
	codecs := []struct {
		name  string
		codec kafka.Compression
	}{
		{"none", 0},
		{"gzip", kafka.Gzip},
		{"snappy", kafka.Snappy},
		{"lz4", kafka.Lz4},
		{"zstd", kafka.Zstd},
	}
	const (
		n          = 300
		partitions = 3
	)
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			topic := "kafkago-codec-" + c.name
			kafkaGoCreateTopic(ctx, t, addr, topic, partitions)

			value := func(i int) string {
				return fmt.Sprintf("value-%03d-%s", i, strings.Repeat(c.name, 20))
			}
			msgs := make([]kafka.Message, n)
			for i := range msgs {
				msgs[i] = kafka.Message{
					Key:     []byte(fmt.Sprintf("key-%03d", i)),
					Value:   []byte(value(i)),
					Headers: []kafka.Header{{Key: "idx", Value: []byte(strconv.Itoa(i))}},
				}
			}
			// The writer's hash balancer is deterministic, so where
			// each key must land is known before writing; a record in
			// another partition means meshka misrouted it.
			wantPart := make(map[string]int, n)
			perPartition := make([]int, partitions)
			for _, m := range msgs {
				p := (&kafka.Hash{}).Balance(m, 0, 1, 2)
				wantPart[string(m.Key)] = p
				perPartition[p]++
			}

			// kafka-go's shared DefaultTransport answers metadata from
			// a cache filled by earlier subtests, which would not know
			// this topic yet; a transport of its own asks meshka.
			transport := &kafka.Transport{}
			defer transport.CloseIdleConnections()
			w := &kafka.Writer{
				Addr:         kafka.TCP(addr),
				Transport:    transport,
				Topic:        topic,
				Balancer:     &kafka.Hash{},
				RequiredAcks: kafka.RequireAll,
				Compression:  c.codec,
				BatchSize:    100,
				BatchTimeout: 10 * time.Millisecond,
			}
			defer w.Close()
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatalf("write: %v", err)
			}

			seen := make(map[string]bool, n)
			for p := 0; p < partitions; p++ {
				got := kafkaGoReadPartition(ctx, t, addr, topic, p, perPartition[p])
				for j, m := range got {
					key := string(m.Key)
					if m.Partition != p || m.Offset != int64(j) {
						t.Errorf("partition %d record %d: read at %d/%d", p, j, m.Partition, m.Offset)
					}
					var i int
					if _, err := fmt.Sscanf(key, "key-%03d", &i); err != nil || i < 0 || i >= n {
						t.Errorf("partition %d offset %d: unexpected key %q", p, m.Offset, key)
						continue
					}
					if seen[key] {
						t.Errorf("key %q delivered twice", key)
					}
					seen[key] = true
					if wantPart[key] != p {
						t.Errorf("key %q in partition %d, balancer chose %d", key, p, wantPart[key])
					}
					if string(m.Value) != value(i) {
						t.Errorf("key %q: value %q, want %q", key, m.Value, value(i))
					}
					if len(m.Headers) != 1 || m.Headers[0].Key != "idx" || string(m.Headers[0].Value) != strconv.Itoa(i) {
						t.Errorf("key %q: headers %v, want [idx=%d]", key, m.Headers, i)
					}
				}
			}
			if len(seen) != n {
				t.Errorf("read %d distinct records, want %d", len(seen), n)
			}

			kafkaGoCheckOffsets(ctx, t, addr, topic, perPartition)
			// kafka-go's codec numbers are the record batch attribute's.
			checkStoredCodec(ctx, t, env, topic, partitions, n, uint8(c.codec))
		})
	}
}

// kafkaGoReadPartition reads want records of one partition with a
// partition-assigned reader (no group, so nothing is committed).
func kafkaGoReadPartition(ctx context.Context, t *testing.T, addr, topic string, partition, want int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   []string{addr},
		Topic:     topic,
		Partition: partition,
		MinBytes:  1,
		MaxBytes:  10 << 20,
		MaxWait:   500 * time.Millisecond,
	})
	defer r.Close()
	var got []kafka.Message
	for len(got) < want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s/%d: %d of %d records: %v", topic, partition, len(got), want, err)
		}
		got = append(got, m)
	}
	return got
}

// kafkaGoCheckOffsets compares the offsets kafka-go's two offset APIs
// report with what was written: a fresh topic starts at 0 and ends at the
// record count of each partition.
func kafkaGoCheckOffsets(ctx context.Context, t *testing.T, addr, topic string, perPartition []int) {
	t.Helper()
	transport := &kafka.Transport{} // see the writer's
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 30 * time.Second, Transport: transport}
	var reqs []kafka.OffsetRequest
	for p := range perPartition {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	offsets := resp.Topics[topic]
	if len(offsets) != len(perPartition) {
		t.Fatalf("list offsets: %d partitions, want %d: %+v", len(offsets), len(perPartition), offsets)
	}
	total := 0
	for _, po := range offsets {
		if po.Error != nil {
			t.Errorf("list offsets %s/%d: %v", topic, po.Partition, po.Error)
			continue
		}
		if po.Partition < 0 || po.Partition >= len(perPartition) {
			t.Errorf("list offsets: unexpected partition %d", po.Partition)
			continue
		}
		if po.FirstOffset != 0 || po.LastOffset != int64(perPartition[po.Partition]) {
			t.Errorf("list offsets %s/%d: first %d last %d, want 0 and %d", topic, po.Partition, po.FirstOffset, po.LastOffset, perPartition[po.Partition])
		}
		total += int(po.LastOffset - po.FirstOffset)
	}
	if want := sum(perPartition); total != want {
		t.Errorf("list offsets: %d records in all, want %d", total, want)
	}

	for p, want := range perPartition {
		conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, p)
		if err != nil {
			t.Fatalf("dial leader of %s/%d: %v", topic, p, err)
		}
		first, ferr := conn.ReadFirstOffset()
		last, lerr := conn.ReadLastOffset()
		conn.Close()
		if ferr != nil || lerr != nil {
			t.Errorf("read offsets of %s/%d: first: %v, last: %v", topic, p, ferr, lerr)
			continue
		}
		if first != 0 || last != int64(want) {
			t.Errorf("conn offsets of %s/%d: first %d last %d, want 0 and %d", topic, p, first, last, want)
		}
	}
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}
