package upstream

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Coordinator types, as FindCoordinator numbers them.
const (
	coordinatorGroup int8 = 0
	coordinatorTxn   int8 = 1
)

// coordinatorAttempts bounds how often one forwarded request is sent again
// after its coordinator moved or was still loading; past it the client
// gets the retriable error and retries on its own schedule.
const coordinatorAttempts = 5

// maxCachedCoordinators bounds the cache; past it the cache starts over,
// which costs each id one FindCoordinator.
const maxCachedCoordinators = 1 << 14

type coordinatorKey struct {
	typ int8
	key string
}

// coordinators caches which upstream broker coordinates a group or a
// transactional id. Entries are dropped when the broker says it no longer
// does, or cannot be reached. Safe for concurrent use.
type coordinators struct {
	mu  sync.Mutex
	ids map[coordinatorKey]int32
}

func (cs *coordinators) get(k coordinatorKey) (int32, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	id, ok := cs.ids[k]
	return id, ok
}

func (cs *coordinators) put(k coordinatorKey, id int32) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.ids == nil || len(cs.ids) >= maxCachedCoordinators {
		cs.ids = make(map[coordinatorKey]int32)
	}
	cs.ids[k] = id
}

func (cs *coordinators) forget(k coordinatorKey) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.ids, k)
}

// coordinator finds the upstream broker coordinating key.
func (c *Client) coordinator(ctx context.Context, k coordinatorKey) (int32, error) {
	if id, ok := c.coords.get(k); ok {
		return id, nil
	}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorType = k.typ
	req.CoordinatorKey = k.key
	req.CoordinatorKeys = []string{k.key}
	kresp, err := c.main.Request(ctx, req)
	if err != nil {
		return -1, err
	}
	resp := kresp.(*kmsg.FindCoordinatorResponse)
	code, id := resp.ErrorCode, resp.NodeID
	if len(resp.Coordinators) > 0 {
		code, id = resp.Coordinators[0].ErrorCode, resp.Coordinators[0].NodeID
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return -1, err
	}
	c.coords.put(k, id)
	return id, nil
}

// toCoordinator sends req, at its version, to the coordinator of key. A
// coordinator that moved (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE), is
// still loading, or cannot be reached is looked up again and the request
// sent again, a bounded number of times: none of those answers means the
// request was applied.
func (c *Client) toCoordinator(ctx context.Context, typ int8, key string, req kmsg.Request) (kmsg.Response, error) {
	k := coordinatorKey{typ, key}
	var resp kmsg.Response
	var err error
	for attempt := 0; attempt < coordinatorAttempts; attempt++ {
		if attempt > 0 && !sleep(ctx, time.Duration(50<<attempt)*time.Millisecond) {
			break
		}
		var id int32
		if id, err = c.coordinator(ctx, k); err != nil {
			resp = nil
			if retriable(err) {
				continue
			}
			return nil, err
		}
		if resp, err = c.toBroker(ctx, id, req); err != nil {
			c.coords.forget(k)
			continue
		}
		switch coordinatorCode(resp) {
		case kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code:
			c.coords.forget(k)
			continue
		case kerr.CoordinatorLoadInProgress.Code:
			continue
		}
		return resp, nil
	}
	if resp != nil {
		return resp, nil
	}
	return nil, err
}

// retriable reports an error a later attempt may not meet.
func retriable(err error) bool {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	return true // a connection error
}

// sleep waits d or until ctx ends, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// coordinatorCode is the error that says whether the coordinator handled a
// request: a request's errors are all the same when the coordinator
// refuses it, so the first one tells.
func coordinatorCode(kresp kmsg.Response) int16 {
	switch r := kresp.(type) {
	case *kmsg.InitProducerIDResponse:
		return r.ErrorCode
	case *kmsg.AddOffsetsToTxnResponse:
		return r.ErrorCode
	case *kmsg.EndTxnResponse:
		return r.ErrorCode
	case *kmsg.OffsetDeleteResponse:
		return r.ErrorCode
	case *kmsg.AddPartitionsToTxnResponse:
		if len(r.Topics) > 0 && len(r.Topics[0].Partitions) > 0 {
			return r.Topics[0].Partitions[0].ErrorCode
		}
	case *kmsg.TxnOffsetCommitResponse:
		if len(r.Topics) > 0 && len(r.Topics[0].Partitions) > 0 {
			return r.Topics[0].Partitions[0].ErrorCode
		}
	case *kmsg.OffsetCommitResponse:
		if len(r.Topics) > 0 && len(r.Topics[0].Partitions) > 0 {
			return r.Topics[0].Partitions[0].ErrorCode
		}
	case *kmsg.OffsetFetchResponse:
		if r.ErrorCode != 0 {
			return r.ErrorCode
		}
		if len(r.Groups) > 0 {
			return r.Groups[0].ErrorCode
		}
	case *kmsg.DeleteGroupsResponse:
		if len(r.Groups) > 0 {
			return r.Groups[0].ErrorCode
		}
	}
	return 0
}

// offsetFetchGroups answers an OffsetFetch v8+, which may name several
// groups, by asking each group's coordinator for its own.
func (c *Client) offsetFetchGroups(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	resp.Groups = make([]kmsg.OffsetFetchResponseGroup, len(req.Groups))
	eachParallel(len(req.Groups), func(i int) {
		sub := *req
		sub.Groups = req.Groups[i : i+1]
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group = req.Groups[i].Group
		kresp, err := c.toCoordinator(ctx, coordinatorGroup, g.Group, &sub)
		switch {
		case err != nil:
			g.ErrorCode = ErrCode(err)
		case len(kresp.(*kmsg.OffsetFetchResponse).Groups) == 1:
			g = kresp.(*kmsg.OffsetFetchResponse).Groups[0]
		default:
			g.ErrorCode = kerr.UnknownServerError.Code
		}
		resp.Groups[i] = g
	})
	return resp
}

// deleteGroups deletes each named group at its coordinator.
func (c *Client) deleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(req.Groups))
	eachParallel(len(req.Groups), func(i int) {
		sub := *req
		sub.Groups = req.Groups[i : i+1]
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = req.Groups[i]
		kresp, err := c.toCoordinator(ctx, coordinatorGroup, g.Group, &sub)
		switch {
		case err != nil:
			g.ErrorCode = ErrCode(err)
		case len(kresp.(*kmsg.DeleteGroupsResponse).Groups) == 1:
			g = kresp.(*kmsg.DeleteGroupsResponse).Groups[0]
		default:
			g.ErrorCode = kerr.UnknownServerError.Code
		}
		resp.Groups[i] = g
	})
	return resp
}

// parallelParts bounds the parts of one request sent upstream at once.
const parallelParts = 8

// eachParallel runs fn(0) … fn(n-1), at most parallelParts at a time, and
// returns when all have.
func eachParallel(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	sem := make(chan struct{}, parallelParts)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}
