package httpmap

import "time"

// SetPatternRefresh sets how often pattern subscriptions are matched
// again, for a test; it returns the undo.
func SetPatternRefresh(d time.Duration) func() {
	old := patternRefresh
	patternRefresh = d
	return func() { patternRefresh = old }
}
