package kafkawire

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// A frame's buffer starts at firstChunk bytes (or the frame's size, if
// smaller) and grows fourfold as bytes arrive, jumping to the full size
// once a fourfold step would reach half of it. So what a frame holds is at
// most eight times what its client actually sent plus firstChunk, a
// 4-byte size prefix alone costs no more than firstChunk, and the bytes
// copied while growing stay under a sixth of the frame.
const firstChunk = 64 << 10

// errReadTimeout marks a frame that did not arrive whole within
// kafka.request_read_timeout.
var errReadTimeout = errors.New("request not received whole within kafka.request_read_timeout")

// readFrame reads a frame of size bytes whose prefix has been read, paying
// for its buffer from the node's request budget as it grows; it waits for
// the budget, not reading meanwhile, when that is spent. It returns the
// frame and the bytes of budget it holds, which the caller releases, also
// on error.
func (c *conn) readFrame(size int32) (frame []byte, held int64, err error) {
	budget := c.s.cfg.RequestBudget
	grow := func(to int) error {
		n := int64(to - cap(frame))
		if err := budget.Acquire(c.ctx, n); err != nil {
			return err
		}
		held += n
		next := make([]byte, len(frame), to)
		copy(next, frame)
		frame = next
		// Time spent waiting for the budget is not the client's.
		return c.readDeadline(time.Now().Add(c.s.cfg.RequestReadTimeout))
	}
	if err := grow(int(min(size, firstChunk))); err != nil {
		return nil, held, err
	}
	for len(frame) < int(size) {
		if len(frame) == cap(frame) {
			next := cap(frame) * 4
			if next*2 >= int(size) {
				next = int(size)
			}
			if err := grow(next); err != nil {
				return nil, held, err
			}
		}
		n, err := c.nc.Read(frame[len(frame):cap(frame)])
		frame = frame[:len(frame)+n]
		if err != nil && len(frame) < int(size) {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout() && !c.stopping.Load():
				return nil, held, errReadTimeout
			case errors.Is(err, io.EOF):
				return nil, held, fmt.Errorf("%w: got %d of the %d bytes announced", io.ErrUnexpectedEOF, len(frame), size)
			}
			return nil, held, err
		}
	}
	return frame, held, nil
}

// readDeadline sets the read deadline unless the connection is stopping,
// whose deadline in the past must stay.
func (c *conn) readDeadline(t time.Time) error {
	if c.stopping.Load() {
		return errStopping
	}
	if err := c.nc.SetReadDeadline(t); err != nil {
		return err
	}
	if c.stopping.Load() {
		// stopReading ran between the check and the set: restore its
		// deadline.
		return errStopping
	}
	return nil
}

// errStopping ends the read loop at shutdown.
var errStopping = errors.New("connection stopping")
