package partition

import (
	"fmt"
	"strconv"
	"strings"

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

// Produce asks the actor to forward one batch upstream. Batches sent to one
// actor reach upstream in the order they were sent. Reply, when not nil,
// receives upstream's answer; it must have room for one value.
//
// Partition messages carry Go channels and are node-local: the Kafka edge
// names the node hosting a partition's actor as its leader, so clients
// bring their requests to that node.
type Produce struct {
	Args  upstream.ProduceArgs
	Reply chan<- upstream.ProduceResult
}

// Fetch asks for the cached data at Offset. The reply comes at once; when it
// holds nothing the reader waits on its Notify channel and asks again.
type Fetch struct {
	Offset    int64
	MaxBytes  int32
	Isolation int8
	Reply     chan<- ReadResult
}

// LogStart tells the actor upstream's log start moved (DeleteRecords went
// through this node), so deleted records stop being served at once.
type LogStart struct{ Offset int64 }

// Warm keeps the partition streamed with no reader (a bootstrap topic).
type Warm struct{}

type warmAt struct{ offset int64 }

type idleTick struct{}
