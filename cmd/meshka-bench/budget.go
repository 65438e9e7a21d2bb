package main

import (
	"fmt"
	"iter"
	"strings"
	"time"
)

// The run's time budget (bench.deadline) is shared out round by round:
// every loop of a section runs its first round, so each row has a figure,
// and a later round only when it still fits after keeping time for what
// must run anyway. That is the rest of the running section's mandatory
// part (its setup, the first round of each of its loops, its teardown)
// and the mandatory parts of the sections still to run, by the estimates
// in measurements, plus reportReserve. Earlier sections therefore get
// their extra rounds first; the ones cut are noted in their sections and
// on the report's run line.

// reportReserve is what the budget keeps for writing the report after
// the last section (the markdown; charts are drawn inside the sections).
const reportReserve = 5 * time.Second

// spare is how much of a budget is left for optional rounds once elapsed
// has gone and reserve (the estimates of mandatory work still to run) and
// reportReserve are kept; negative when the run is already past it.
func spare(budget, elapsed time.Duration, reserve []time.Duration) time.Duration {
	left := budget - elapsed - reportReserve
	for _, d := range reserve {
		left -= d
	}
	return left
}

// roundFits says whether one more round, taking about next, fits a budget
// of which elapsed has gone, with reserve kept as spare keeps it.
func roundFits(budget, elapsed, next time.Duration, reserve []time.Duration) bool {
	return next <= spare(budget, elapsed, reserve)
}

// sectionBudget is the budget's account of the running section.
type sectionBudget struct {
	// need is the measurement's estimate of its mandatory part.
	need  time.Duration
	start time.Time
	// optional is the time its optional rounds (all but each loop's
	// first, and optional parts such as fan-out's N=1000) have taken.
	optional time.Duration
	// cuts names the loops the budget cut short, and notes says how.
	cuts, notes []string
}

// mandatory is the time the section has spent on what it runs anyway.
func (s *sectionBudget) mandatory() time.Duration {
	return time.Since(s.start) - s.optional
}

// startSection opens the budget's account of m, with later the estimates
// of the sections selected to run after it.
func (b *bench) startSection(m measurement, later []time.Duration) {
	b.sec = sectionBudget{need: m.estimate(b.opts.quick), start: time.Now()}
	b.later = later
}

// reserve is what the budget keeps back from optional rounds now: the
// rest of the running section's mandatory estimate, then the later
// sections' estimates.
func (b *bench) reserve() []time.Duration {
	return append([]time.Duration{max(b.sec.need-b.sec.mandatory(), 0)}, b.later...)
}

// spare is the time left in the run's budget for optional rounds.
func (b *bench) spare() time.Duration {
	return spare(b.deadline.Sub(b.start), time.Since(b.start), b.reserve())
}

// anotherRound says whether one more round of a measurement, taking about
// next, fits the run's budget with the reserve kept.
func (b *bench) anotherRound(next time.Duration) bool {
	return roundFits(b.deadline.Sub(b.start), time.Since(b.start), next, b.reserve())
}

// roundsFor yields the rounds 1 … n of one of a section's loops, id
// naming the loop in the progress log and the notes: the first always,
// each later one only if a round as long as the longest so far fits the
// budget (anotherRound). A loop cut short says so in the section's notes
// ("k of n rounds"), so a section's figures are medians of the rounds
// it ran. Breaking out of the loop is allowed.
func (b *bench) roundsFor(id string, n int) iter.Seq[int] { return b.rounds(id, n, false) }

// optionalRoundsFor is roundsFor for a part of a section its caller has
// decided fits the budget (fan-out's N=1000): its first round is not
// mandatory either, so all its time counts as optional and leaves the
// section's reserve as it was.
func (b *bench) optionalRoundsFor(id string, n int) iter.Seq[int] { return b.rounds(id, n, true) }

func (b *bench) rounds(id string, n int, optional bool) iter.Seq[int] {
	return func(yield func(int) bool) {
		var longest time.Duration
		for r := 1; r <= n; r++ {
			if r > 1 && !b.anotherRound(longest) {
				b.cutRounds(id, r-1, n, longest)
				return
			}
			start := time.Now()
			more := yield(r)
			took := time.Since(start)
			longest = max(longest, took)
			if r > 1 || optional {
				b.sec.optional += took
			}
			if !more {
				return
			}
		}
	}
}

// cutRounds notes that loop id stopped after ran of its n rounds, each
// taking up to round, because the next did not fit the budget.
func (b *bench) cutRounds(id string, ran, n int, round time.Duration) {
	var kept time.Duration
	for _, d := range b.reserve() {
		kept += d
	}
	what := "the rest of this section's mandatory part: the first rounds of its other loops, its teardown"
	if len(b.later) > 0 {
		what += fmt.Sprintf("; the first rounds of the %d measurement(s) after it", len(b.later))
	}
	note := fmt.Sprintf("%s ran %d of %d rounds: the run's time budget. A round took up to %s; when the next was due, %s of the %s budget was left, "+
		"and %s of it was kept for what must still run (%s) and for writing the report.",
		id, ran, n, round.Round(100*time.Millisecond), max(b.remaining(), 0).Round(time.Second), b.deadline.Sub(b.start),
		(kept + reportReserve).Round(time.Second), what)
	b.progress("%s", note)
	b.sec.cuts = append(b.sec.cuts, id)
	b.sec.notes = append(b.sec.notes, note)
}

// budgetLine is the report's run line's account of the budget: its
// length and the loops it cut.
func budgetLine(budget time.Duration, cuts []string) string {
	if len(cuts) == 0 {
		return fmt.Sprintf("time budget %s, which cut no rounds", budget)
	}
	return fmt.Sprintf("time budget %s, which cut rounds of %s (see their notes)", budget, strings.Join(cuts, ", "))
}
