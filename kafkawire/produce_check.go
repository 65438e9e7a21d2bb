package kafkawire

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/schema/validate"
)

// checkedBatches are the topics rules' answers for one Produce request's
// batches, by topic and partition index in the request; nil when no rule
// checks any of them.
type checkedBatches [][][]validate.RecordError

func (c checkedBatches) of(topic, partition int) []validate.RecordError {
	if c == nil || c[topic] == nil {
		return nil
	}
	return c[topic][partition]
}

// parallelCheckBytes is the request size from which its batches are
// checked on several goroutines: below it, starting them costs more than
// it saves.
const parallelCheckBytes = 64 << 10

// checkBatches checks every batch of req the topics rules check, before
// any is sent on: the batches of a request (one per partition) are
// checked at once, on up to GOMAXPROCS goroutines including this one, so
// a producer's connection is not held to one core by the decoding, while
// the batches still go to their partitions in request order afterwards.
// The goroutines it starts have returned when it returns.
func (s *Server) checkBatches(req *kmsg.ProduceRequest) checkedBatches {
	v := s.deps.Validator
	if v == nil {
		return nil
	}
	type job struct{ t, p int }
	var jobs []job
	size := 0
	for t := range req.Topics {
		rt := &req.Topics[t]
		if !v.Validates(rt.Topic) {
			continue
		}
		for p := range rt.Partitions {
			if rp := &rt.Partitions[p]; rp.Records != nil {
				jobs = append(jobs, job{t, p})
				size += len(rp.Records)
			}
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	out := make(checkedBatches, len(req.Topics))
	for _, j := range jobs {
		if out[j.t] == nil {
			out[j.t] = make([][]validate.RecordError, len(req.Topics[j.t].Partitions))
		}
	}
	check := func(j job) {
		rt := &req.Topics[j.t]
		out[j.t][j.p] = v.CheckBatch(rt.Topic, rt.Partitions[j.p].Records)
	}
	workers := min(len(jobs), runtime.GOMAXPROCS(0))
	if workers < 2 || size < parallelCheckBytes {
		for _, j := range jobs {
			check(j)
		}
		return out
	}
	var next atomic.Int32
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(jobs) {
				return
			}
			check(jobs[i])
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	return out
}
