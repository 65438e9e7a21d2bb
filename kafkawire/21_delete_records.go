package kafkawire

// DeleteRecords, key 21.
//
// Forwarded at the client's version to each partition's upstream leader.
// The partition actors are told the new log start offsets at once, so
// deleted records stop being served from their caches; deletions made
// straight upstream reach the caches with their streams' next answer.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/actors/partition"
)

func init() {
	register(21, 0, maxOf(21), forward(func(c *conn, _ kmsg.Request, kresp kmsg.Response) {
		for _, t := range kresp.(*kmsg.DeleteRecordsResponse).Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode == 0 {
					_ = c.s.deps.Mesh.Tell(partition.Kind, c.s.partitionID(t.Topic, p.Partition), &partition.LogStart{Offset: p.LowWatermark})
				}
			}
		}
	}))
}
