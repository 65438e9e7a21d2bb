package main

import (
	"strings"
	"testing"
	"time"
)

// Another round fits when the budget left after what has elapsed, the
// mandatory estimates still to run and the report's reserve holds it.
func TestRoundFits(t *testing.T) {
	const budget = 14 * time.Minute
	later := []time.Duration{time.Minute, 2 * time.Minute}
	for _, c := range []struct {
		name             string
		elapsed, next    time.Duration
		reserve          []time.Duration
		want             bool
		wantSpareSeconds float64
	}{
		// 14m − 10m − 3m − 5 s (the report) leaves 55 s.
		{"fits the spare time exactly", 10 * time.Minute, 55 * time.Second, later, true, 55},
		{"a second longer than the spare time", 10 * time.Minute, 56 * time.Second, later, false, 55},
		{"nothing kept but the report", 10 * time.Minute, 3*time.Minute + 55*time.Second, nil, true, 235},
		{"the later sections' estimates count", 10 * time.Minute, 3*time.Minute + 55*time.Second, later, false, 55},
		{"past the budget", 15 * time.Minute, time.Second, nil, false, -65},
		{"the reserve alone overruns it", 5 * time.Minute, time.Second, []time.Duration{10 * time.Minute}, false, -65},
	} {
		if got := roundFits(budget, c.elapsed, c.next, c.reserve); got != c.want {
			t.Errorf("%s: roundFits(%s, %s, %s, %v) = %v, want %v", c.name, budget, c.elapsed, c.next, c.reserve, got, c.want)
		}
		if got := spare(budget, c.elapsed, c.reserve).Seconds(); got != c.wantSpareSeconds {
			t.Errorf("%s: spare = %.0f s, want %.0f s", c.name, got, c.wantSpareSeconds)
		}
	}
}

// roundsFor runs every round while the budget has room, only the first
// when it has none, notes the cut, and stops when the loop breaks.
func TestRoundsFor(t *testing.T) {
	count := func(b *bench, n int, stopAt int) int {
		ran := 0
		for r := range b.roundsFor("X", n) {
			if r != ran+1 {
				t.Fatalf("round %d after round %d", r, ran)
			}
			ran = r
			if r == stopAt {
				break
			}
		}
		return ran
	}
	fresh := func(budget time.Duration, need time.Duration, later ...time.Duration) *bench {
		now := time.Now()
		b := &bench{start: now, deadline: now.Add(budget), later: later}
		b.sec = sectionBudget{need: need, start: now}
		return b
	}

	if got := count(fresh(time.Hour, 0), 3, 0); got != 3 {
		t.Errorf("with an hour to spare: %d rounds, want 3", got)
	}
	if got := count(fresh(time.Hour, 0), 3, 2); got != 2 {
		t.Errorf("breaking out after round 2: %d rounds", got)
	}
	b := fresh(time.Hour, 0, 2*time.Hour)
	if got := count(b, 3, 0); got != 1 {
		t.Errorf("with a later section's estimate over the budget: %d rounds, want 1", got)
	}
	if len(b.sec.cuts) != 1 || b.sec.cuts[0] != "X" || len(b.sec.notes) != 1 || !strings.Contains(b.sec.notes[0], "X ran 1 of 3 rounds") {
		t.Errorf("the cut is not noted: cuts %q, notes %q", b.sec.cuts, b.sec.notes)
	}
	// The section's own mandatory estimate is kept too: with an hour of
	// budget and two of it to run, only first rounds fit.
	if got := count(fresh(time.Hour, 2*time.Hour), 3, 0); got != 1 {
		t.Errorf("with the section's own estimate over the budget: %d rounds, want 1", got)
	}
	b = fresh(0, 0)
	if got := count(b, 1, 0); got != 1 || len(b.sec.cuts) != 0 {
		t.Errorf("a one-round loop past the budget: %d rounds, cuts %q; want its round and no cut", got, b.sec.cuts)
	}

	// Rounds after a loop's first count as optional, so they do not eat
	// into what the budget keeps for the section's mandatory part.
	b = fresh(time.Hour, 0)
	for r := range b.roundsFor("X", 3) {
		time.Sleep(time.Duration(r) * 10 * time.Millisecond)
	}
	if b.sec.optional < 50*time.Millisecond || b.sec.mandatory() < 10*time.Millisecond {
		t.Errorf("rounds of 10, 20 and 30 ms: optional %s, mandatory %s; want at least 50 ms and at least 10 ms", b.sec.optional, b.sec.mandatory())
	}
}
