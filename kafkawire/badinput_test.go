package kafkawire_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testbatch"
	"github.com/meshka/meshka/internal/testenv"
)

// closeGuard bounds how long a test waits for meshka to close a connection
// or answer; it only stops a broken server from hanging the test.
const closeGuard = 15 * time.Second

// healthProbe is a real franz-go client of the node. Each check produces a
// record and consumes it back through meshka with a second client, and
// asks for metadata, so a bad connection that hurt the node shows up.
type healthProbe struct {
	env      *testenv.Env
	producer *kgo.Client
	topic    string
	n        int
}

func newHealthProbe(t *testing.T, env *testenv.Env, topic string) *healthProbe {
	return &healthProbe{env: env, topic: topic, producer: env.Client(t, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())}
}

func (h *healthProbe) check(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.n++
	value := fmt.Sprintf("probe-%d", h.n)
	rec := &kgo.Record{Value: []byte(value)}
	if err := h.producer.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatalf("healthy client: produce through meshka: %v", err)
	}

	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(h.topic)
	md.Topics = []kmsg.MetadataRequestTopic{mt}
	resp, err := md.RequestWith(ctx, h.producer)
	if err != nil {
		t.Fatalf("healthy client: metadata: %v", err)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("healthy client: metadata for %s: %+v", h.topic, resp.Topics)
	}

	// A client of its own, closed here, so no consumer lingers polling.
	consumer, err := kgo.NewClient(kgo.SeedBrokers(h.env.Addr()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{h.topic: {rec.Partition: kgo.NewOffset().At(rec.Offset)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("healthy client: did not consume %s at %d/%d: %v", value, rec.Partition, rec.Offset, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("healthy client: fetch %s/%d: %v", topic, p, err) })
		found := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset == rec.Offset && string(r.Value) == value {
				found = true
			}
		})
		if found {
			return
		}
	}
}

// frame builds a raw request: size prefix, header with an int16 client id,
// the empty tag section when flexible, then body.
func frame(key, version int16, corrID int32, flexible bool, body []byte) []byte {
	b := make([]byte, 4, 64+len(body))
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corrID))
	b = binary.BigEndian.AppendUint16(b, 3)
	b = append(b, "raw"...)
	if flexible {
		b = append(b, 0)
	}
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

var formatter = kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw"))

func encode(req kmsg.Request, corrID int32) []byte { return formatter.AppendRequest(nil, req, corrID) }

func dial(t testing.TB, env *testenv.Env) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", env.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// expectClosedSilently reads until meshka closes the connection and fails
// if it wrote anything first or kept the connection open.
func expectClosedSilently(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(closeGuard))
	got, err := io.ReadAll(c)
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, syscall.ECONNRESET):
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("meshka did not close the connection (waited %v)", closeGuard)
	default:
		t.Fatalf("reading from meshka: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("meshka answered a bad request with %d bytes: %x", len(got), got[:min(len(got), 64)])
	}
}

// readResponse reads one response frame and returns its correlation id and
// the rest.
func readResponse(t *testing.T, r io.Reader) (int32, []byte) {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		t.Fatalf("reading a response size: %v", err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 64<<20 {
		t.Fatalf("response size %d", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("reading a %d-byte response: %v", n, err)
	}
	return int32(binary.BigEndian.Uint32(buf[:4])), buf[4:]
}

func startBadInputEnv(t *testing.T) *testenv.Env {
	return testenv.Start(t, func(c *config.Config) { c.Kafka.MaxFrameBytes = 1 << 20 })
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	env := startBadInputEnv(t)
	probe := newHealthProbe(t, env, "badinput-health")
	probe.check(t)

	metadataV9 := kmsg.NewPtrMetadataRequest()
	metadataV9.Version = 9
	for _, name := range []string{"a-topic", "another-topic"} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		metadataV9.Topics = append(metadataV9.Topics, mt)
	}
	mdFull := encode(metadataV9, 9)
	mdBody := mdFull[4+2+2+4+2+3+1:] // after the header and its tags
	// Half the body, framed as a complete request of that size.
	mdTruncated := frame(3, 9, 9, true, mdBody[:len(mdBody)/2])

	produceV2 := kmsg.NewPtrProduceRequest()
	produceV2.Version = 2
	fetchV0 := kmsg.NewPtrFetchRequest()
	fetchV0.Version = 0
	metadataV99 := kmsg.NewPtrMetadataRequest()
	metadataV99.Version = 99

	tlsHello := []byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03}
	for i := 0; i < 32; i++ {
		tlsHello = append(tlsHello, byte(i*7))
	}

	oversize := binary.BigEndian.AppendUint32(nil, 2<<20)
	oversize = append(oversize, make([]byte, 512)...)

	cases := []struct {
		name      string
		send      []byte
		halfClose bool // close our write side after sending
	}{
		{"size over the limit", oversize, false},
		{"negative size", append([]byte{0xFF, 0xFF, 0xFF, 0xF0}, make([]byte, 16)...), false},
		{"most negative size", append([]byte{0x80, 0, 0, 0}, make([]byte, 16)...), false},
		{"size below header", []byte{0, 0, 0, 5, 0, 3, 0, 0, 0}, false},
		{"zero size", []byte{0, 0, 0, 0}, false},
		{"truncated frame", append([]byte{0, 0, 0, 100}, frame(18, 3, 1, true, make([]byte, 16))[4:4+20]...), true},
		{"unknown API key", frame(999, 0, 1, false, nil), false},
		{"negative API key", frame(-1, 0, 1, false, nil), false},
		{"Produce v2", encode(produceV2, 1), false},
		{"Fetch v0", encode(fetchV0, 1), false},
		{"Metadata v99", encode(metadataV99, 1), false},
		{"Metadata negative version", frame(3, -1, 1, false, nil), false},
		{"HTTP request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false},
		{"TLS ClientHello", tlsHello, false},
		{"Metadata v9 garbage body", frame(3, 9, 1, true, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0xAB, 0xCD}), false},
		{"Metadata v9 truncated body", mdTruncated, false},
		{"Metadata v9 no body", frame(3, 9, 1, true, nil), false},
		{"flexible header with truncated tags", frame(3, 9, 1, false, []byte{2, 0, 5, 'x'}), false},
		{"client id longer than frame", []byte{0, 0, 0, 12, 0, 3, 0, 0, 0, 0, 0, 1, 0, 50, 'a', 'b'}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := dial(t, env)
			// A write can fail once meshka has closed on the first bytes;
			// what matters is how meshka answers, checked below.
			_, _ = conn.Write(c.send)
			if c.halfClose {
				if err := conn.CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			expectClosedSilently(t, conn)
			probe.check(t)
		})
	}
}

// Requests read before a bad frame are still answered; the bad frame then
// closes the connection without an answer of its own.
func TestBadFrameAfterGoodRequest(t *testing.T) {
	env := startBadInputEnv(t)
	probe := newHealthProbe(t, env, "badinput-after-good")
	probe.check(t)

	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "raw", "1"
	conn := dial(t, env)
	if _, err := conn.Write(append(encode(av, 41), []byte("GET / HTTP/1.1\r\n\r\n")...)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(closeGuard))
	corr, body := readResponse(t, conn)
	if corr != 41 {
		t.Fatalf("correlation id %d, want 41", corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	if err := resp.ReadFrom(body); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions v3 response: %v, code %d", err, resp.ErrorCode)
	}
	expectClosedSilently(t, conn)
	probe.check(t)
}

func TestApiVersionsUnknownVersion(t *testing.T) {
	env := startBadInputEnv(t)
	probe := newHealthProbe(t, env, "badinput-apiversions")
	probe.check(t)

	// What meshka advertises for ApiVersions to a normal request is the
	// range the fallback must name.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	normal, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, probe.producer)
	if err != nil {
		t.Fatal(err)
	}
	var want *kmsg.ApiVersionsResponseApiKey
	for i := range normal.ApiKeys {
		if normal.ApiKeys[i].ApiKey == 18 {
			want = &normal.ApiKeys[i]
		}
	}
	if want == nil {
		t.Fatal("meshka does not advertise ApiVersions")
	}

	conn := dial(t, env)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 99
	if _, err := conn.Write(encode(req, 1234)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(closeGuard))
	br := bufio.NewReader(conn)
	corr, body := readResponse(t, br)
	if corr != 1234 {
		t.Fatalf("correlation id %d, want 1234", corr)
	}
	// v0 format: no tag section after the correlation id, no throttle.
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("the answer does not decode as ApiVersions v0: %v (%x)", err, body)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error code %d, want %d (UNSUPPORTED_VERSION)", resp.ErrorCode, kerr.UnsupportedVersion.Code)
	}
	if len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 ||
		resp.ApiKeys[0].MinVersion != want.MinVersion || resp.ApiKeys[0].MaxVersion != want.MaxVersion {
		t.Fatalf("fallback lists %+v, want only ApiVersions %d..%d", resp.ApiKeys, want.MinVersion, want.MaxVersion)
	}

	// The connection stays open: the client retries at a version named.
	retry := kmsg.NewPtrApiVersionsRequest()
	retry.Version = want.MaxVersion
	retry.ClientSoftwareName, retry.ClientSoftwareVersion = "raw", "1"
	if _, err := conn.Write(encode(retry, 1235)); err != nil {
		t.Fatalf("meshka closed after the fallback: %v", err)
	}
	corr, body = readResponse(t, br)
	if corr != 1235 {
		t.Fatalf("retry correlation id %d, want 1235", corr)
	}
	ok := kmsg.NewPtrApiVersionsResponse()
	ok.Version = retry.Version
	if err := ok.ReadFrom(body); err != nil || ok.ErrorCode != 0 || len(ok.ApiKeys) < 2 {
		t.Fatalf("retry answer: %v, code %d, %d keys", err, ok.ErrorCode, len(ok.ApiKeys))
	}
	probe.check(t)
}

func TestPipelinedResponsesInOrder(t *testing.T) {
	env := startBadInputEnv(t)
	probe := newHealthProbe(t, env, "badinput-pipeline")
	probe.check(t)

	// Ids out of numeric order, so that sorting cannot pass for ordering.
	pipeline(t, env, probe, []int32{42, 7, 1000, 3, 99, 5, 77, 12, 500, 1})
	// More than the default in-flight bound (32): reading pauses while the
	// queue is full and must resume, in order, as answers go out.
	var many []int32
	for i := int32(0); i < 100; i++ {
		many = append(many, (i*37)%101+2000)
	}
	pipeline(t, env, probe, many)
	probe.check(t)
}

// pipeline sends one request per id on one connection without reading,
// alternating Metadata v12 and ApiVersions v3, then checks the answers come
// back in request order and each is the answer to its request's API.
func pipeline(t *testing.T, env *testenv.Env, probe *healthProbe, ids []int32) {
	t.Helper()
	var out []byte
	var keys []int16
	for i, id := range ids {
		var req kmsg.Request
		if i%2 == 0 {
			md := kmsg.NewPtrMetadataRequest()
			md.Version = 12
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(probe.topic)
			md.Topics = []kmsg.MetadataRequestTopic{mt}
			req = md
		} else {
			av := kmsg.NewPtrApiVersionsRequest()
			av.Version = 3
			av.ClientSoftwareName, av.ClientSoftwareVersion = "raw", "1"
			req = av
		}
		keys = append(keys, req.Key())
		out = append(out, encode(req, id)...)
	}
	conn := dial(t, env)
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(closeGuard))
	br := bufio.NewReader(conn)
	for i, id := range ids {
		corr, body := readResponse(t, br)
		if corr != id {
			t.Fatalf("response %d has correlation id %d, want %d", i, corr, id)
		}
		switch keys[i] {
		case 3:
			// Metadata v12 has the flexible response header: one empty
			// tag section before the body.
			if len(body) == 0 || body[0] != 0 {
				t.Fatalf("response %d: no empty tag section in a flexible header", i)
			}
			md := kmsg.NewPtrMetadataResponse()
			md.Version = 12
			if err := md.ReadFrom(body[1:]); err != nil || len(md.Topics) != 1 || *md.Topics[0].Topic != probe.topic {
				t.Fatalf("response %d is not the Metadata answer: %v", i, err)
			}
		case 18:
			av := kmsg.NewPtrApiVersionsResponse()
			av.Version = 3
			if err := av.ReadFrom(body); err != nil || av.ErrorCode != 0 {
				t.Fatalf("response %d is not the ApiVersions answer: %v", i, err)
			}
		}
	}
}

// FuzzConn writes each input to a fresh connection of one running node and
// checks, every few inputs, that a healthy client is still served. The node
// runs in this process, so a panic anywhere in meshka fails the target.
func FuzzConn(f *testing.F) {
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "fuzz", "1"
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("fuzz")
	md.Topics = []kmsg.MetadataRequestTopic{mt}
	pr := kmsg.NewPtrProduceRequest()
	pr.Version = 9
	pr.Acks = 1
	pr.TimeoutMillis = 1000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "fuzz"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = testbatch.Encode(testbatch.NoProducer(), testbatch.Values("fuzz")...)
	pt.Partitions = []kmsg.ProduceRequestTopicPartition{pp}
	pr.Topics = []kmsg.ProduceRequestTopic{pt}
	fe := kmsg.NewPtrFetchRequest()
	fe.Version = 12
	fe.MaxWaitMillis = 10
	fe.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "fuzz"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = []kmsg.FetchRequestTopicPartition{fp}
	fe.Topics = []kmsg.FetchRequestTopic{ft}
	av99 := kmsg.NewPtrApiVersionsRequest()
	av99.Version = 99

	f.Add(encode(av, 1))
	f.Add(encode(md, 2))
	f.Add(encode(pr, 3))
	f.Add(encode(fe, 4))
	f.Add(encode(av99, 5))
	f.Add(append(encode(av, 6), encode(md, 7)...))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03})
	f.Add(frame(3, 9, 1, true, []byte{0xFF, 0xFF, 0xFF, 0x0F}))

	// One node for every input: in fuzzing mode each worker process runs
	// this setup once and then many inputs.
	env := testenv.Start(f, func(c *config.Config) {
		c.Kafka.MaxFrameBytes = 1 << 20
		// A fuzzed fetch may ask for a long poll; keep each input short.
		c.Kafka.FetchMaxWaitCap = config.Duration(200 * time.Millisecond)
	})
	healthy := env.Client(f)
	var iterations atomic.Int64

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", env.Addr())
		if err != nil {
			t.Fatalf("meshka stopped accepting connections: %v", err)
		}
		defer c.Close()
		// Bounded per input: the write may block once meshka stops reading,
		// and valid requests may take a moment to answer. Neither is a
		// failure; only the health check below is.
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = c.Write(data)
		_ = c.(*net.TCPConn).CloseWrite()
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 16<<20))

		if iterations.Add(1)%20 != 1 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, healthy)
		if err != nil {
			t.Fatalf("meshka stopped serving a healthy client: %v", err)
		}
		if len(resp.Brokers) == 0 {
			t.Fatal("meshka's metadata lists no brokers")
		}
	})
}
