package test

import (
	"encoding/binary"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testbatch"
	"github.com/meshka/meshka/internal/testenv"
)

// upstreamAcks records the acks of every Produce request upstream gets.
func upstreamAcks(env *testenv.Env) func() []int16 {
	var mu sync.Mutex
	var acks []int16
	env.Upstream.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		env.Upstream.KeepControl()
		mu.Lock()
		acks = append(acks, kreq.(*kmsg.ProduceRequest).Acks)
		mu.Unlock()
		return nil, nil, false
	})
	return func() []int16 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(acks)
	}
}

// Producers with acks=1 and acks=0 (franz-go, not idempotent) write
// through meshka: every record lands upstream, in order. acks=1 reaches
// upstream as acks=1; acks=0 reaches it as acks=1 too, since meshka needs
// upstream's answer to keep the partition's later batches in order, while
// the client waits for nothing.
func TestProduceAcksOneAndZero(t *testing.T) {
	for _, c := range []struct {
		name string
		acks kgo.Acks
	}{{"acks=1", kgo.LeaderAck()}, {"acks=0", kgo.NoAck()}} {
		t.Run(c.name, func(t *testing.T) {
			env := testenv.Start(t)
			ctx := timeout(t, time.Minute)
			const n = 500
			topic := "acks-" + c.name[len("acks="):]
			createTopic(t, ctx, env.DirectClient(t), topic, 1, nil)
			acks := upstreamAcks(env)
			p := env.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(c.acks), kgo.DisableIdempotentWrite(),
				kgo.ProducerLinger(0), kgo.MaxBufferedRecords(50))
			for i := 0; i < n; i++ {
				p.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, failed(t))
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			// acks=0 is done once written to meshka; upstream catches up.
			got := consumeN(t, ctx, env.DirectClient(t, kgo.ConsumeTopics(topic), fromStart()), n)
			for i, r := range got {
				if string(r.Value) != strconv.Itoa(i) {
					t.Fatalf("offset %d holds %q, want %d", r.Offset, r.Value, i)
				}
			}
			seen := acks()
			if len(seen) == 0 {
				t.Fatal("upstream got no Produce request")
			}
			for _, a := range seen {
				if a != 1 {
					t.Fatalf("upstream got Produce requests with acks %v, want all 1", seen)
				}
			}
		})
	}
}

// Kafka sends no response to a Produce with acks=0. On one connection, an
// acks=0 Produce followed by a Metadata request gets exactly one answer,
// the Metadata's, and the record is upstream.
func TestProduceAcksZeroGetsNoResponse(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	const topic = "acks-none"
	createTopic(t, ctx, env.DirectClient(t), topic, 1, nil)

	conn, err := net.Dial("tcp", env.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw"))
	prod := kmsg.NewPtrProduceRequest()
	prod.Version, prod.Acks, prod.TimeoutMillis = 9, 0, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = testbatch.Encode(testbatch.NoProducer(), testbatch.Values("unacknowledged")...)
	rt.Partitions = append(rt.Partitions, rp)
	prod.Topics = append(prod.Topics, rt)
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 12
	// AppendRequest sizes the whole slice it is given: one buffer each.
	wire := append(f.AppendRequest(nil, prod, 1), f.AppendRequest(nil, meta, 2)...)
	if _, err := conn.Write(wire); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatalf("no answer on the connection: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatal(err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != 2 {
		t.Fatalf("first answer has correlation id %d, want 2 (the Metadata's): the acks=0 Produce was answered", corr)
	}
	got := consumeN(t, ctx, env.DirectClient(t, kgo.ConsumeTopics(topic), fromStart()), 1)
	if string(got[0].Value) != "unacknowledged" {
		t.Fatalf("upstream holds %q", got[0].Value)
	}
}
