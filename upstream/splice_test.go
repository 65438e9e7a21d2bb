package upstream

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The spliced encoding is byte for byte kmsg's own, at every Produce
// version meshka forwards, for one and many partitions and for records
// whose length needs a multi-byte prefix.
func TestProduceEncoderMatchesKmsg(t *testing.T) {
	fmtr := kmsg.NewRequestFormatter(kmsg.FormatterClientID("meshka"))
	enc := produceEncoder{fmt: fmtr}
	sizes := [][]int{{1}, {70}, {200, 3}, {20000, 0, 129, 5}}
	for v := int16(0); v <= 12; v++ {
		for _, parts := range sizes {
			t.Run(fmt.Sprintf("v%d/%v", v, parts), func(t *testing.T) {
				req := kmsg.NewPtrProduceRequest()
				req.SetVersion(v)
				req.Acks = -1
				req.TimeoutMillis = 1500
				txn := "txn-a"
				req.TransactionID = &txn
				for i, n := range parts {
					rt := kmsg.NewProduceRequestTopic()
					rt.Topic = fmt.Sprintf("topic-%d", i%2)
					rp := kmsg.NewProduceRequestTopicPartition()
					rp.Partition = int32(i)
					rp.Records = bytes.Repeat([]byte{byte(i + 1)}, n)
					rt.Partitions = append(rt.Partitions, rp)
					req.Topics = append(req.Topics, rt)
				}
				want := fmtr.AppendRequest(nil, req, 42)
				var got []byte
				for _, b := range enc.encode(req, 42) {
					got = append(got, b...)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("spliced encoding differs from kmsg's:\n got %x\nwant %x", head(got), head(want))
				}
				if len(parts) > 0 && parts[0] >= 70 && len(enc.iov) < 2 {
					t.Fatalf("records were copied, not spliced (%d segments)", len(enc.iov))
				}
				// The request is left as it was.
				if again := fmtr.AppendRequest(nil, req, 42); !bytes.Equal(again, want) {
					t.Fatal("encode changed the request")
				}
				enc.release()
			})
		}
	}
}

func head(b []byte) []byte {
	if len(b) > 96 {
		return b[:96]
	}
	return b
}

// A produce answer upstream might send decodes, or fails with an error,
// never a panic; a valid one decodes to what was encoded.
func FuzzProduceResponse(f *testing.F) {
	for v := int16(0); v <= 12; v++ {
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(v)
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = "t"
		rp := kmsg.NewProduceResponseTopicPartition()
		rp.BaseOffset = 7
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		body := binary.BigEndian.AppendUint32(nil, 5)
		if resp.IsFlexible() {
			body = append(body, 0)
		}
		f.Add(v, resp.AppendTo(body))
	}
	f.Fuzz(func(t *testing.T, v int16, body []byte) {
		if v < 0 || v > 12 || len(body) < 4 {
			return
		}
		resp, err := decodeProduceResponse(body, &pipeRequest{corr: 5, version: v})
		if err != nil {
			return
		}
		// What decoded re-encodes and decodes to the same answer.
		again := binary.BigEndian.AppendUint32(nil, 5)
		if resp.IsFlexible() {
			again = append(again, 0)
		}
		again = resp.AppendTo(again)
		resp2, err := decodeProduceResponse(again, &pipeRequest{corr: 5, version: v})
		if err != nil {
			t.Fatalf("re-encoded answer does not decode: %v", err)
		}
		if !bytes.Equal(resp2.AppendTo(nil), resp.AppendTo(nil)) {
			t.Fatal("answer changed through a re-encode")
		}
	})
}
