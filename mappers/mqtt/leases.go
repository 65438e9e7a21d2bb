package mqtt

import (
	"context"
	"sync"
	"time"

	"github.com/meshka/meshka/mesh"
)

// leaser grants a session to one connection at a time: acquire returns
// once the session's previous holder (told through its revoke) let go,
// or did not within a bound.
type leaser interface {
	acquire(ctx context.Context, id, holder string, revoke func()) (release func(), err error)
}

// meshLeases hold sessions across the cluster, through the mesh API's
// leases: one lease actor per client id arbitrates, wherever the holder
// and the new connection are.
type meshLeases struct{ m *mesh.Mesh }

func (l *meshLeases) acquire(ctx context.Context, id, holder string, revoke func()) (func(), error) {
	ls, err := l.m.Acquire(ctx, mesh.LeaseOptions{Name: leaseName, ID: id, Holder: holder, OnRevoked: revoke})
	if err != nil {
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ls.Release(ctx)
	}, nil
}

// localLeases hold sessions within one node.
type localLeases struct {
	mu   sync.Mutex
	held map[string]*localHold
}

type localHold struct {
	revoke   func()
	released chan struct{}
}

// revokeWait bounds how long a holder has to let go.
const revokeWait = 5 * time.Second

func (l *localLeases) acquire(ctx context.Context, id, holder string, revoke func()) (func(), error) {
	for {
		l.mu.Lock()
		if l.held == nil {
			l.held = map[string]*localHold{}
		}
		h, ok := l.held[id]
		if !ok {
			mine := &localHold{revoke: revoke, released: make(chan struct{})}
			l.held[id] = mine
			l.mu.Unlock()
			var once sync.Once
			return func() {
				once.Do(func() {
					l.mu.Lock()
					if l.held[id] == mine {
						delete(l.held, id)
					}
					l.mu.Unlock()
					close(mine.released)
				})
			}, nil
		}
		l.mu.Unlock()
		h.revoke()
		t := time.NewTimer(revokeWait)
		select {
		case <-h.released:
		case <-t.C:
			l.mu.Lock()
			if l.held[id] == h {
				delete(l.held, id)
			}
			l.mu.Unlock()
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		t.Stop()
	}
}
