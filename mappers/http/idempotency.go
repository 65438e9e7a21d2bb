package httpmap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/meshka/meshka/mesh"
)

// Idempotency keys: a produce retried with the same Idempotency-Key
// within idempotencyTTL, on any node, is answered as the first was,
// without writing the record again. The keys are kept by binding actors
// (kind http-idempotency), each holding the keys of one shard of the key
// space in memory: a shard's node lost forgets its keys.
const (
	idempotencyKind   = "http-idempotency"
	idempotencyShards = 64
	idempotencyTTL    = 10 * time.Minute
	// idempotencyPerShard bounds the keys a shard remembers; the oldest
	// go first.
	idempotencyPerShard = 4096
	// idempotencyAbandoned is how long a first attempt may take before a
	// retry takes its place (its node gone, say).
	idempotencyAbandoned = 2 * time.Minute
	// idempotencyPoll is how often a retry asks whether the first
	// attempt, still running, has answered.
	idempotencyPoll = 50 * time.Millisecond
)

// idemCall is what the produce handler asks a shard: begin an attempt of
// a key, or finish it with its answer.
type idemCall struct {
	Op     string `json:"op"` // begin or finish
	Key    string `json:"key"`
	Token  string `json:"token"` // the attempt's
	Status int    `json:"status,omitempty"`
	Body   []byte `json:"body,omitempty"`
}

// idemAnswer is a shard's answer to begin: first (produce, then finish),
// pending (another attempt is producing: ask again) or done (answer as
// it did).
type idemAnswer struct {
	State  string `json:"state"`
	Status int    `json:"status,omitempty"`
	Body   []byte `json:"body,omitempty"`
}

func idemShard(key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	return fmt.Sprintf("shard-%d", h.Sum32()%idempotencyShards)
}

// idemActor is one shard of the keys.
type idemActor struct {
	byKey map[string]*idemEntry
	order []idemSlot // the entries, oldest first
	seq   uint64
}

// idemSlot is an entry's place in the order.
type idemSlot struct {
	key string
	seq uint64
}

type idemEntry struct {
	seq    uint64
	token  string
	at     time.Time
	done   bool
	status int
	body   []byte
}

func newIdemActor(string) (mesh.Actor, error) {
	return &idemActor{byKey: map[string]*idemEntry{}}, nil
}

func (a *idemActor) Stop(mesh.StopReason) {}

func (a *idemActor) Receive(_ context.Context, body []byte) ([]byte, error) {
	var c idemCall
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("an idempotency call that does not decode: %w", err)
	}
	now := time.Now()
	switch c.Op {
	case "begin":
		a.evict(now)
		e, ok := a.byKey[c.Key]
		switch {
		case ok && e.done:
			return json.Marshal(idemAnswer{State: "done", Status: e.status, Body: e.body})
		case ok && now.Sub(e.at) < idempotencyAbandoned:
			return json.Marshal(idemAnswer{State: "pending"})
		case ok:
			e.token, e.at = c.Token, now // abandoned: this attempt takes its place
		default:
			a.seq++
			a.byKey[c.Key] = &idemEntry{seq: a.seq, token: c.Token, at: now}
			a.order = append(a.order, idemSlot{c.Key, a.seq})
		}
		return json.Marshal(idemAnswer{State: "first"})
	case "finish":
		e, ok := a.byKey[c.Key]
		if !ok || e.token != c.Token {
			return json.Marshal(idemAnswer{})
		}
		if c.Status == 0 || c.Status >= 500 {
			delete(a.byKey, c.Key) // failed: a retry tries again
		} else {
			e.done, e.status, e.body, e.at = true, c.Status, c.Body, now
		}
		return json.Marshal(idemAnswer{})
	}
	return nil, fmt.Errorf("an unknown idempotency call %q", c.Op)
}

// evict forgets the keys past their time, and the oldest past the bound.
func (a *idemActor) evict(now time.Time) {
	for len(a.order) > 0 {
		slot := a.order[0]
		e, ok := a.byKey[slot.key]
		if ok && e.seq == slot.seq && now.Sub(e.at) < idempotencyTTL && len(a.order) <= idempotencyPerShard {
			break
		}
		if ok && e.seq == slot.seq {
			delete(a.byKey, slot.key)
		}
		a.order = a.order[1:]
	}
}

// idemBegin begins an attempt of key: it returns the attempt's token when
// this one is first, or the earlier attempt's answer when it is done,
// waiting while another attempt runs.
func (s *Server) idemBegin(ctx context.Context, key string) (token string, done *idemAnswer, err error) {
	var b [12]byte
	rand.Read(b[:])
	token = hex.EncodeToString(b[:])
	call, _ := json.Marshal(idemCall{Op: "begin", Key: key, Token: token})
	for {
		out, err := s.idem.Call(ctx, idemShard(key), call)
		if err != nil {
			return "", nil, err
		}
		var ans idemAnswer
		if err := json.Unmarshal(out, &ans); err != nil {
			return "", nil, err
		}
		switch ans.State {
		case "first":
			return token, nil, nil
		case "done":
			return "", &ans, nil
		}
		select {
		case <-time.After(idempotencyPoll):
		case <-ctx.Done():
			return "", nil, ctx.Err()
		}
	}
}

// idemFinish records the first attempt's answer.
func (s *Server) idemFinish(key, token string, status int, body []byte) {
	call, _ := json.Marshal(idemCall{Op: "finish", Key: key, Token: token, Status: status, Body: body})
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if _, err := s.idem.Call(ctx, idemShard(key), call); err != nil {
		s.log.Debug("an idempotency key's answer was not kept", "err", err)
	}
}
