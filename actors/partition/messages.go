package partition

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/upstream"
)

// Kind is the actor kind partition actors are registered under.
const Kind = "partition"

// Identity names a partition actor: <upstream>/<topic>/<partition>.
func Identity(upstreamName, topic string, partition int32) string {
	return upstreamName + "/" + topic + "/" + strconv.FormatInt(int64(partition), 10)
}

// ParseIdentity splits an identity made by Identity. Topic names cannot
// hold '/', so the first and last separators are unambiguous.
func ParseIdentity(id string) (upstreamName, topic string, partition int32, err error) {
	i, j := strings.IndexByte(id, '/'), strings.LastIndexByte(id, '/')
	if i < 0 || i == j {
		return "", "", 0, fmt.Errorf("partition identity %q: want <upstream>/<topic>/<partition>", id)
	}
	p, err := strconv.ParseInt(id[j+1:], 10, 32)
	if err != nil || p < 0 {
		return "", "", 0, fmt.Errorf("partition identity %q: bad partition", id)
	}
	return id[:i], id[i+1 : j], int32(p), nil
}

// The messages other nodes and the node's own connections send a
// partition actor are protobuf messages (partition.proto), so any node
// can send them: ProduceRequest, FetchRequest, LogStart and Warm. The
// actor answers through the sender of the request (cluster.Mesh.Ask); on
// the node itself the messages pass as pointers, never encoded.

// ProduceArgs is the upstream produce of a request to the partition.
func (r *ProduceRequest) ProduceArgs(topic string, partition int32) upstream.ProduceArgs {
	return upstream.ProduceArgs{
		Topic: topic, Partition: partition, Version: int16(r.Version),
		Acks: int16(r.Acks), TimeoutMillis: r.TimeoutMillis,
		TransactionalID: r.TransactionalId, Records: r.Records,
	}
}

// valid says whether the request is one the Kafka edge could have sent:
// a Produce version meshka serves (0-12), acks -1, 0 or 1, and records.
func (r *ProduceRequest) valid() bool {
	return r.Version >= 0 && r.Version <= 12 && r.Acks >= -1 && r.Acks <= 1 && r.Records != nil
}

// NewProduceRequest is the request forwarding args, whose topic and
// partition name the actor it goes to.
func NewProduceRequest(args upstream.ProduceArgs) *ProduceRequest {
	return &ProduceRequest{Version: int32(args.Version), Acks: int32(args.Acks), TimeoutMillis: args.TimeoutMillis,
		TransactionalId: args.TransactionalID, Records: args.Records}
}

func newProduceResponse(r upstream.ProduceResult) *ProduceResponse {
	out := &ProduceResponse{ErrorCode: int32(r.ErrorCode), BaseOffset: r.BaseOffset, LogAppendTime: r.LogAppendTime,
		LogStartOffset: r.LogStartOffset, ErrorMessage: r.ErrorMessage}
	for _, e := range r.ErrorRecords {
		out.RecordErrors = append(out.RecordErrors, &RecordError{Index: e.RelativeOffset, Message: e.ErrorMessage})
	}
	return out
}

// Result is the response as the Kafka answer for the partition.
func (r *ProduceResponse) Result(partition int32) upstream.ProduceResult {
	out := kmsg.NewProduceResponseTopicPartition()
	out.Partition, out.ErrorCode = partition, int16(r.ErrorCode)
	out.BaseOffset, out.LogAppendTime, out.LogStartOffset = r.BaseOffset, r.LogAppendTime, r.LogStartOffset
	out.ErrorMessage = r.ErrorMessage
	for _, e := range r.RecordErrors {
		re := kmsg.NewProduceResponseTopicPartitionErrorRecord()
		re.RelativeOffset, re.ErrorMessage = e.Index, e.Message
		out.ErrorRecords = append(out.ErrorRecords, re)
	}
	return out
}

func newFetchResponse(r ReadResult) *FetchResponse {
	out := &FetchResponse{Status: int32(r.Status), ErrorCode: int32(r.Err), HighWatermark: r.HighWatermark,
		LastStableOffset: r.LastStableOffset, LogStartOffset: r.LogStartOffset, Batches: r.Batches}
	for _, a := range r.Aborted {
		out.Aborted = append(out.Aborted, &Aborted{ProducerId: a.ProducerID, FirstOffset: a.FirstOffset, LastOffset: a.LastOffset})
	}
	return out
}

// Read is the response as a cache read (with no Notify: a reader on the
// node reads the cache itself to wait on it).
func (r *FetchResponse) Read() ReadResult {
	out := ReadResult{Status: ReadStatus(r.Status), Err: int16(r.ErrorCode), HighWatermark: r.HighWatermark,
		LastStableOffset: r.LastStableOffset, LogStartOffset: r.LogStartOffset, Batches: r.Batches}
	for _, b := range r.Batches {
		out.Bytes += len(b)
	}
	for _, a := range r.Aborted {
		out.Aborted = append(out.Aborted, AbortedTxn{ProducerID: a.ProducerId, FirstOffset: a.FirstOffset, LastOffset: a.LastOffset})
	}
	return out
}

type warmAt struct{ offset int64 }

type idleTick struct{}
