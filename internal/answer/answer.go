// Package answer builds the entries of Kafka responses that answer a
// request entry by entry: a topic per topic, a partition per partition.
package answer

// Each returns one response entry per request entry, in order, each set
// to kmsg's defaults (Default) before set fills it from its request entry.
// Nested, it answers every partition of every topic:
//
//	resp.Topics = answer.Each(req.Topics, func(rt *kmsg.XResponseTopic, t *kmsg.XRequestTopic) {
//		rt.Topic = t.Topic
//		rt.Partitions = answer.Each(t.Partitions, func(rp *kmsg.XResponseTopicPartition, p *kmsg.XRequestTopicPartition) {
//			rp.Partition, rp.ErrorCode = p.Partition, code
//		})
//	})
func Each[In, Out any, PO interface {
	*Out
	Default()
}](in []In, set func(out *Out, in *In)) []Out {
	if len(in) == 0 {
		return nil // as a loop appending to a nil slice leaves it
	}
	out := make([]Out, len(in))
	for i := range in {
		PO(&out[i]).Default()
		set(&out[i], &in[i])
	}
	return out
}
