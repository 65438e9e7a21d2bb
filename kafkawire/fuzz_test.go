package kafkawire

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testbatch"
)

// fuzzMaxFrame is the limit the fuzz targets give checkSize; small enough
// that the fuzzer reaches it.
const fuzzMaxFrame = 1 << 20

// upstreamVersions is a real upstream's ApiVersions answer (a kfake
// cluster's), asked once per test binary. Decoding against it is what a
// connection does once upstream has answered, so versions upstream lacks
// (Produce below v3) are refused as they are in service.
var upstreamVersions = sync.OnceValues(func() (*kmsg.ApiVersionsResponse, error) {
	up, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return nil, err
	}
	defer up.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(up.ListenAddrs()...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("kfake's ApiVersions: %w", err)
	}
	return resp, nil
})

func realUpstream(tb testing.TB) *kmsg.ApiVersionsResponse {
	tb.Helper()
	up, err := upstreamVersions()
	if err != nil {
		tb.Fatal(err)
	}
	return up
}

// checkFrame runs one frame through parseRequest, the connection's own
// decoding, and checks what the steps promise each other.
func checkFrame(t *testing.T, frame []byte, up *kmsg.ApiVersionsResponse) {
	h, req, err := parseRequest(frame, up)
	if err != nil {
		return
	}
	// The body is the tail of the frame, after the client id.
	if len(h.body)+len(h.clientID)+minRequestSize != len(frame) {
		t.Fatalf("header %d + client id %d + body %d bytes != frame %d", minRequestSize, len(h.clientID), len(h.body), len(frame))
	}
	if req == nil {
		if h.key != apiVersionsKey || h.version >= apis[h.key].min && h.version <= apis[h.key].max {
			t.Fatalf("fallback answer for %s v%d, which meshka handles", kmsg.NameForKey(h.key), h.version)
		}
		// The fallback must be encodable as a v0 answer a client can read.
		out := appendResponse(nil, &inflight{key: apiVersionsKey, version: 0, corrID: h.corrID}, withVersion(apiVersionsFallback(), 0))
		var back kmsg.ApiVersionsResponse
		if err := back.ReadFrom(out[8:]); err != nil || back.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("fallback does not read back as v0 UNSUPPORTED_VERSION: %v, code %d", err, back.ErrorCode)
		}
		return
	}
	if req.Key() != h.key || req.GetVersion() != h.version {
		t.Fatalf("decoded %d v%d from a header naming %d v%d", req.Key(), req.GetVersion(), h.key, h.version)
	}
	if a := apis[h.key]; h.version < a.min || h.version > a.max {
		t.Fatalf("decoded %s v%d, outside meshka's %d to %d", kmsg.NameForKey(h.key), h.version, a.min, a.max)
	}
	if lo, hi, ok := versionRange(up, h.key); ok && !selfAnswered(h.key) && (h.version < lo || h.version > hi) {
		t.Fatalf("decoded %s v%d, outside upstream's %d to %d", kmsg.NameForKey(h.key), h.version, lo, hi)
	}
	// Whatever decoded must re-encode without panicking: handlers forward
	// some requests upstream as they are.
	_ = req.AppendTo(nil)
}

func withVersion(r kmsg.Response, v int16) kmsg.Response {
	r.SetVersion(v)
	return r
}

// fuzzBatch is one record batch built with kmsg, for Produce seeds.
func fuzzBatch() []byte {
	return testbatch.Encode(testbatch.NoProducer(), testbatch.Values("fuzz")...)
}

// seedRequests are valid requests as a real client frames them.
func seedRequests() [][]byte {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz-seed"))

	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "franz-go", "1.0.0"

	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("seed")
	md.Topics = []kmsg.MetadataRequestTopic{mt}

	pr := kmsg.NewPtrProduceRequest()
	pr.Version = 9
	pr.Acks = -1
	pr.TimeoutMillis = 1000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "seed"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = fuzzBatch()
	pt.Partitions = []kmsg.ProduceRequestTopicPartition{pp}
	pr.Topics = []kmsg.ProduceRequestTopic{pt}

	fe := kmsg.NewPtrFetchRequest()
	fe.Version = 12
	fe.MaxWaitMillis = 10
	fe.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "seed"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = []kmsg.FetchRequestTopicPartition{fp}
	fe.Topics = []kmsg.FetchRequestTopic{ft}

	av99 := kmsg.NewPtrApiVersionsRequest()
	av99.Version = 99

	// Produce v2 is meshka's but below upstream's range.
	old := kmsg.NewPtrProduceRequest()
	old.Version, old.Acks, old.TimeoutMillis, old.Topics = 2, -1, 1000, pr.Topics

	var out [][]byte
	for i, r := range []kmsg.Request{av, md, pr, fe, av99, old} {
		out = append(out, f.AppendRequest(nil, r, int32(i+1)))
	}
	return out
}

// FuzzFrame feeds bytes through the steps a connection applies to what it
// reads: the size check on the first 4 bytes, the header, the API and
// version lookup, the flexible header's tags, and kmsg's body decode. It
// checks nothing panics and that the steps agree with each other.
func FuzzFrame(f *testing.F) {
	for _, s := range seedRequests() {
		f.Add(s)
	}
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03})
	f.Add([]byte{0, 0, 0, 10, 3, 231, 0, 0, 0, 0, 0, 1, 255, 255})
	up := realUpstream(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		size, err := checkSize([4]byte(data[:4]), fuzzMaxFrame)
		if err == nil {
			if size < minRequestSize || size > fuzzMaxFrame {
				t.Fatalf("checkSize accepted %d", size)
			}
			if int(size) <= len(data)-4 {
				// What the connection does: exactly size bytes are the frame.
				checkFrame(t, data[4:4+size], up)
			}
		}
		// Also decode the remainder as a frame whatever the prefix says, so
		// the fuzzer need not keep the prefix consistent to reach decode.
		checkFrame(t, data[4:], up)
	})
}

type keyVersion struct{ key, version int16 }

// registered lists every key and version meshka accepts.
func registered() []keyVersion {
	var out []keyVersion
	for key, a := range apis {
		for v := a.min; v <= a.max; v++ {
			out = append(out, keyVersion{key, v})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].key != out[j].key {
			return out[i].key < out[j].key
		}
		return out[i].version < out[j].version
	})
	return out
}

// FuzzRequestBody decodes arbitrary bodies at every key and version meshka
// registers; which one is picked by sel so all are reachable.
func FuzzRequestBody(f *testing.F) {
	kvs := registered()
	for i, kv := range kvs {
		req := kmsg.RequestForKey(kv.key)
		req.SetVersion(kv.version)
		f.Add(uint16(i), req.AppendTo(nil))
	}
	f.Fuzz(func(t *testing.T, sel uint16, body []byte) {
		kv := kvs[int(sel)%len(kvs)]
		req := kmsg.RequestForKey(kv.key)
		req.SetVersion(kv.version)
		if req.ReadFrom(body) == nil {
			_ = req.AppendTo(nil)
		}
		_, _ = skipTags(body)
	})
}

// Every registered key and version must decode what kmsg encodes for it,
// framed as a client frames it, and refuse every strict truncation of it
// rather than act on a partial request. Once upstream has answered
// ApiVersions, a version outside upstream's range is refused instead.
func TestDecodeEveryRegisteredVersion(t *testing.T) {
	up := realUpstream(t)
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	refused := 0
	for _, kv := range registered() {
		req := kmsg.RequestForKey(kv.key)
		req.SetVersion(kv.version)
		full := f.AppendRequest(nil, req, 5)
		frame := full[4:]
		_, got, err := parseRequest(frame, nil)
		if err != nil || got == nil {
			t.Errorf("%s v%d: %v (fallback %v)", kmsg.NameForKey(kv.key), kv.version, err, got == nil)
			continue
		}
		if !bytes.Equal(got.AppendTo(nil), req.AppendTo(nil)) {
			t.Errorf("%s v%d: decoded request re-encodes differently", kmsg.NameForKey(kv.key), kv.version)
		}
		bodyStart := len(frame) - len(req.AppendTo(nil))
		for cut := bodyStart; cut < len(frame); cut++ {
			if _, _, err := parseRequest(frame[:cut], nil); err == nil {
				t.Errorf("%s v%d: a body cut to %d of %d bytes decoded", kmsg.NameForKey(kv.key), kv.version, cut-bodyStart, len(frame)-bodyStart)
				break
			}
		}

		lo, hi, listed := versionRange(up, kv.key)
		want := !listed || selfAnswered(kv.key) || kv.version >= lo && kv.version <= hi
		_, got, err = parseRequest(frame, up)
		switch {
		case want && (err != nil || got == nil):
			t.Errorf("%s v%d, within upstream's %d to %d: %v", kmsg.NameForKey(kv.key), kv.version, lo, hi, err)
		case !want && err == nil:
			t.Errorf("%s v%d decoded though upstream handles %d to %d", kmsg.NameForKey(kv.key), kv.version, lo, hi)
		case !want:
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("upstream takes every version meshka registers: the upstream range check was not exercised")
	}
}
