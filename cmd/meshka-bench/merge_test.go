package main

import (
	"strings"
	"testing"
)

// A merge replaces the sections run again, keeps the others, puts a new
// one before the next section run again that the old report has, or
// before the micro-benchmarks, keeps the Machine section's notes of
// earlier re-runs only for sections not run again now, and takes the
// fresh report's head.
func TestMergeReports(t *testing.T) {
	old := "head\n## Machine\n\n| m |\n\n" + rerunPrefix + " (-only A): A; E, at commit x on d, 1s in all.\n\n" +
		"## A\n\nold A\n\n## B\n\nold B\n\n## E\n\nold E\n\n## Micro-benchmarks\n\nmicro\n\n"
	fresh := "fresh head\n## Machine\n\n| n |\n\n## A\n\nnew A\n\n## D\n\nnew D\n\n## B\n\nnew B\n\n## C\n\nnew C\n\n"
	got := mergeReports(old, fresh, rerunPrefix+" (-only A,B,C,D): A; D; B; C, at commit y on e, 2s in all.")
	for _, want := range []string{"fresh head\n## Machine\n\n| m |", "(-only A): E, at commit x", "## A\n\nnew A\n\n## D\n\nnew D\n\n## B\n\nnew B\n\n## E\n\nold E",
		"## C\n\nnew C\n\n## Micro-benchmarks", "(-only A,B,C,D): A; D; B; C, at commit y"} {
		if !strings.Contains(got, want) {
			t.Errorf("merged report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "old A") || strings.Contains(got, "old B") || strings.Contains(got, "| n |") || strings.HasPrefix(got, "head\n") {
		t.Errorf("merged report kept what it replaces:\n%s", got)
	}
}
