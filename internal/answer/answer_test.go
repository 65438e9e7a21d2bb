package answer_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/answer"
)

// Each keeps the request's order, answers every entry once, and starts
// each answer from kmsg's defaults (-1 offsets, not 0).
func TestEachAnswersInOrderFromDefaults(t *testing.T) {
	req := kmsg.NewPtrListOffsetsRequest()
	for _, name := range []string{"b", "a"} {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = name
		for _, p := range []int32{2, 0, 1} {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	got := answer.Each(req.Topics, func(rt *kmsg.ListOffsetsResponseTopic, t *kmsg.ListOffsetsRequestTopic) {
		rt.Topic = t.Topic
		rt.Partitions = answer.Each(t.Partitions, func(rp *kmsg.ListOffsetsResponseTopicPartition, p *kmsg.ListOffsetsRequestTopicPartition) {
			rp.Partition, rp.ErrorCode = p.Partition, 6
		})
	})
	if len(got) != 2 || got[0].Topic != "b" || got[1].Topic != "a" {
		t.Fatalf("topics %+v, want b then a", got)
	}
	for _, rt := range got {
		if len(rt.Partitions) != 3 {
			t.Fatalf("%s: %d partitions, want 3", rt.Topic, len(rt.Partitions))
		}
		for i, want := range []int32{2, 0, 1} {
			rp := rt.Partitions[i]
			if rp.Partition != want || rp.ErrorCode != 6 || rp.Offset != -1 || rp.Timestamp != -1 || rp.LeaderEpoch != -1 {
				t.Fatalf("%s entry %d: %+v, want partition %d, code 6, offset, timestamp and epoch -1", rt.Topic, i, rp, want)
			}
		}
	}
	if none := answer.Each([]kmsg.ListOffsetsRequestTopic(nil), func(*kmsg.ListOffsetsResponseTopic, *kmsg.ListOffsetsRequestTopic) {}); len(none) != 0 {
		t.Fatalf("%d answers for no entries", len(none))
	}
}
