package httpmap

import (
	"sync"
	"time"
)

// Idempotency keys: a produce retried with the same Idempotency-Key on
// the same node within idempotencyTTL is answered as the first was,
// without writing the record again.
const (
	idempotencyTTL  = 10 * time.Minute
	idempotencyKeys = 10000 // remembered at most; the oldest go first
)

// idempotency remembers what produces with an Idempotency-Key answered.
type idempotency struct {
	mu    sync.Mutex
	byKey map[string]*attempt
	order []string // keys, oldest first
}

type attempt struct {
	done   chan struct{} // closed once the first attempt has answered
	at     time.Time
	status int
	body   []byte
}

// begin returns the attempt of key and whether it is the first: the
// first produces and calls finish; the others wait on done and answer
// as it did.
func (id *idempotency) begin(key string, now time.Time) (*attempt, bool) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.byKey == nil {
		id.byKey = map[string]*attempt{}
	}
	for len(id.order) > 0 {
		oldest := id.byKey[id.order[0]]
		if len(id.order) < idempotencyKeys && (oldest == nil || now.Sub(oldest.at) < idempotencyTTL) {
			break
		}
		delete(id.byKey, id.order[0])
		id.order = id.order[1:]
	}
	if a, ok := id.byKey[key]; ok {
		return a, false
	}
	a := &attempt{done: make(chan struct{}), at: now}
	id.byKey[key] = a
	id.order = append(id.order, key)
	return a, true
}

// finish records the first attempt's answer; a failed one (status 0 or
// 5xx) is forgotten, so a retry tries again.
func (id *idempotency) finish(key string, a *attempt, status int, body []byte) {
	id.mu.Lock()
	a.status, a.body = status, body
	if status == 0 || status >= 500 {
		if id.byKey[key] == a {
			delete(id.byKey, key)
		}
	}
	id.mu.Unlock()
	close(a.done)
}
