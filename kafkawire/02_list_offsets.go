package kafkawire

// ListOffsets, key 2.
//
// All versions kmsg knows, narrowed to upstream's by ApiVersions. Forwarded
// to each partition's upstream leader (earliest, latest, by timestamp, max
// timestamp) and re-encoded at the client's version; a v0 client gets its
// offset in the v0 list form.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(2, 0, maxOf(2), forward(false, listOffsetsV0)) }

func listOffsetsV0(_ *conn, req kmsg.Request, kresp kmsg.Response) {
	if req.GetVersion() != 0 {
		return
	}
	resp := kresp.(*kmsg.ListOffsetsResponse)
	for ti := range resp.Topics {
		for pi := range resp.Topics[ti].Partitions {
			p := &resp.Topics[ti].Partitions[pi]
			if p.ErrorCode == 0 && p.OldStyleOffsets == nil {
				p.OldStyleOffsets = []int64{p.Offset}
			}
		}
	}
}
