package kafkawire

import (
	"bytes"
	"fmt"
	"sort"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testbatch"
)

// fuzzMaxFrame is the limit the fuzz targets give checkSize; small enough
// that the fuzzer reaches it.
const fuzzMaxFrame = 1 << 20

// decodeFrame is conn.decode up to the point where it calls the handler,
// which needs a running node. It returns the decoded request, or the
// fallback response meshka writes for an unknown ApiVersions version.
func decodeFrame(frame []byte) (kmsg.Request, kmsg.Response, error) {
	h, err := parseHeader(frame)
	if err != nil {
		return nil, nil, err
	}
	a, ok := apis[h.key]
	if !ok {
		return nil, nil, fmt.Errorf("unsupported API key %d", h.key)
	}
	if h.version < a.min || h.version > a.max {
		if h.key == apiVersionsKey {
			return nil, apiVersionsFallback(), nil
		}
		return nil, nil, fmt.Errorf("unsupported version %d", h.version)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	body := h.body
	if req.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			return nil, nil, err
		}
	}
	if err := req.ReadFrom(body); err != nil {
		return nil, nil, err
	}
	return req, nil, nil
}

// checkFrame runs one frame through the connection's steps and checks
// what the steps promise each other.
func checkFrame(t *testing.T, frame []byte) {
	h, err := parseHeader(frame)
	if err == nil {
		// The body is the tail of the frame, after the client id.
		if len(h.body)+len(h.clientID)+minRequestSize != len(frame) {
			t.Fatalf("header %d + client id %d + body %d bytes != frame %d", minRequestSize, len(h.clientID), len(h.body), len(frame))
		}
	}
	req, fallback, err := decodeFrame(frame)
	if err != nil {
		return
	}
	if fallback != nil {
		// The fallback must be encodable as a v0 answer a client can read.
		out := appendResponse(nil, &inflight{key: apiVersionsKey, version: 0, corrID: h.corrID}, withVersion(fallback, 0))
		var back kmsg.ApiVersionsResponse
		if err := back.ReadFrom(out[8:]); err != nil || back.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("fallback does not read back as v0 UNSUPPORTED_VERSION: %v, code %d", err, back.ErrorCode)
		}
		return
	}
	if req.Key() != h.key || req.GetVersion() != h.version {
		t.Fatalf("decoded %d v%d from a header naming %d v%d", req.Key(), req.GetVersion(), h.key, h.version)
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

	var out [][]byte
	for i, r := range []kmsg.Request{av, md, pr, fe, av99} {
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
				checkFrame(t, data[4:4+size])
			}
		}
		// Also decode the remainder as a frame whatever the prefix says, so
		// the fuzzer need not keep the prefix consistent to reach decode.
		checkFrame(t, data[4:])
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
// rather than act on a partial request.
func TestDecodeEveryRegisteredVersion(t *testing.T) {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	for _, kv := range registered() {
		req := kmsg.RequestForKey(kv.key)
		req.SetVersion(kv.version)
		full := f.AppendRequest(nil, req, 5)
		frame := full[4:]
		got, fallback, err := decodeFrame(frame)
		if err != nil || fallback != nil {
			t.Errorf("%s v%d: %v (fallback %v)", kmsg.NameForKey(kv.key), kv.version, err, fallback != nil)
			continue
		}
		if !bytes.Equal(got.AppendTo(nil), req.AppendTo(nil)) {
			t.Errorf("%s v%d: decoded request re-encodes differently", kmsg.NameForKey(kv.key), kv.version)
		}
		bodyStart := len(frame) - len(req.AppendTo(nil))
		for cut := bodyStart; cut < len(frame); cut++ {
			if _, _, err := decodeFrame(frame[:cut]); err == nil {
				t.Errorf("%s v%d: a body cut to %d of %d bytes decoded", kmsg.NameForKey(kv.key), kv.version, cut-bodyStart, len(frame)-bodyStart)
				break
			}
		}
	}
}
