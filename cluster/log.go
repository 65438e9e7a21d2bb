package cluster

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"
)

// levelFloor drops records below a level, for libraries that log chattily.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(a), h.min}
}

func (h levelFloor) WithGroup(g string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(g), h.min}
}

// newStdLogger turns memberlist's log lines ("[WARN] memberlist: …") into
// slog records: warnings and errors at their level, its chatty debug and
// info lines at debug.
// Once quiet is set (the node is leaving or crashing), memberlist's
// complaints about its own closed sockets are only debug records.
func newStdLogger(l *slog.Logger, quiet *atomic.Bool) *log.Logger {
	return log.New(stdWriter{l, quiet}, "", 0)
}

type stdWriter struct {
	l     *slog.Logger
	quiet *atomic.Bool
}

func (w stdWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
		if strings.HasPrefix(line, prefix) {
			level, line = l, strings.TrimSpace(strings.TrimPrefix(line, prefix))
			break
		}
	}
	if level >= slog.LevelWarn && !w.quiet.Load() {
		w.l.Log(context.Background(), level, line)
	} else {
		w.l.Debug(line)
	}
	return len(p), nil
}
