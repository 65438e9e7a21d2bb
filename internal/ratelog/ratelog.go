// Package ratelog keeps a repeated warning to one log line per interval,
// with a count of the repeats it held back, so trouble that touches every
// request (an upstream outage) cannot flood the log.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxKeys bounds the warnings tracked at once; keys are meant to be a
// handful of fixed strings, and past the bound the oldest state is dropped.
const maxKeys = 256

// Limiter logs each key at most once per interval. Safe for concurrent
// use; never blocks on anything but the logger.
type Limiter struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	keys map[string]*state
}

type state struct {
	last       time.Time // when a line was last written
	suppressed int       // repeats since then
}

// New returns a limiter writing to log at most once per interval per key.
func New(log *slog.Logger, interval time.Duration) *Limiter {
	return &Limiter{log: log, interval: interval, now: time.Now, keys: make(map[string]*state)}
}

// Warn logs msg at warn level unless key was logged within the interval,
// in which case it is only counted; the next line written for key carries
// the count as "repeated". It reports whether a line was written.
func (l *Limiter) Warn(key, msg string, args ...any) bool {
	return l.Log(slog.LevelWarn, key, msg, args...)
}

// Log is Warn at another level.
func (l *Limiter) Log(level slog.Level, key, msg string, args ...any) bool {
	now := l.now()
	l.mu.Lock()
	s := l.keys[key]
	if s == nil {
		if len(l.keys) >= maxKeys {
			l.keys = make(map[string]*state)
		}
		s = &state{}
		l.keys[key] = s
	} else if now.Sub(s.last) < l.interval {
		s.suppressed++
		l.mu.Unlock()
		return false
	}
	repeated, prev := s.suppressed, s.last
	s.last, s.suppressed = now, 0
	l.mu.Unlock()
	if repeated > 0 {
		args = append(args, "repeated", repeated, "since", now.Sub(prev).Round(time.Millisecond))
	}
	l.log.Log(context.Background(), level, msg, args...)
	return true
}
