package upstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// health remembers whether meshka's last attempt to reach upstream failed
// to get any answer, so callers can stop waiting on an upstream that is
// known to be down. Safe for concurrent use.
type health struct {
	mu  sync.Mutex
	err error // nil once upstream answered
}

// failed records err when it means upstream gave no answer: a Kafka error
// code is an answer, and a cancelled context is the asker's own doing.
func (h *health) failed(err error) {
	var ke *kerr.Error
	if errors.As(err, &ke) || errors.Is(err, context.Canceled) {
		return
	}
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
}

func (h *health) answered() {
	h.mu.Lock()
	h.err = nil
	h.mu.Unlock()
}

func (h *health) unreachable() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// silent records that an ask got no answer within d: upstream is treated
// as unreachable until one comes.
func (h *health) silent(d time.Duration) {
	h.mu.Lock()
	if h.err == nil {
		h.err = fmt.Errorf("no answer within %s", d)
	}
	h.mu.Unlock()
}

// Ping asks upstream's brokers, one after another, for their API versions
// until one answers; what it finds is what Unreachable reports next.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := c.timeout(ctx)
	defer cancel()
	err := c.main.Ping(ctx)
	if err != nil {
		c.health.failed(err)
	} else {
		c.health.answered()
	}
	return err
}
