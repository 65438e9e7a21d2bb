package netguard

import (
	"context"
	"fmt"
	"sync"
)

// Budget bounds the bytes a node holds for one purpose (requests being
// read or waiting, responses not yet written) across all its connections.
// Safe for concurrent use. Acquire blocks; the other methods never do.
type Budget struct {
	max int64

	mu      sync.Mutex
	used    int64
	waiting int           // callers blocked in Acquire
	changed chan struct{} // closed and replaced when bytes are released while some wait
}

// NewBudget returns a budget of max bytes; max <= 0 means no bound.
func NewBudget(max int64) *Budget {
	return &Budget{max: max, changed: make(chan struct{})}
}

// Max is the bound, or 0 when there is none.
func (b *Budget) Max() int64 {
	if b.max <= 0 {
		return 0
	}
	return b.max
}

// Used is the bytes held now.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Acquire takes n bytes, waiting until they are free or ctx ends. n larger
// than the whole budget can never be taken and fails at once.
func (b *Budget) Acquire(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	if b.max > 0 && n > b.max {
		return fmt.Errorf("%d bytes exceed the whole budget of %d", n, b.max)
	}
	for {
		b.mu.Lock()
		if b.max <= 0 || b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		wait := b.changed
		b.waiting++
		b.mu.Unlock()
		var err error
		select {
		case <-wait:
		case <-ctx.Done():
			err = ctx.Err()
		}
		b.mu.Lock()
		b.waiting--
		b.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// TryAcquire takes n bytes if they are free now.
func (b *Budget) TryAcquire(n int64) bool {
	if n <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.max > 0 && b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

// AcquireUpTo takes as much of n as is free now, possibly 0, and returns
// what it took.
func (b *Budget) AcquireUpTo(n int64) int64 {
	if n <= 0 {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.max > 0 {
		n = min(n, b.max-b.used)
		if n < 0 {
			n = 0
		}
	}
	b.used += n
	return n
}

// Release gives back n bytes taken before and wakes those waiting.
func (b *Budget) Release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.used < 0 {
		b.mu.Unlock()
		panic("netguard: budget released more than was taken")
	}
	if b.waiting > 0 {
		close(b.changed)
		b.changed = make(chan struct{})
	}
	b.mu.Unlock()
}
