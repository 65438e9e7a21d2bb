package main

import (
	"fmt"
	"strings"
)

// mergeReports puts the sections of fresh, a run of some measurements
// (-only), into old, the report of an earlier run: each fresh section
// replaces old's of the same title, or, when old has none, goes before
// the next fresh section old has, else before the micro-benchmarks (at
// the end without them), so the report's order holds; every other section of
// old is kept as it was measured. old's Machine section says which
// sections were measured again, and at which commit and date. The head,
// which describes the harness rather than a measurement, is fresh's.
func mergeReports(old, fresh, rerun string) string {
	_, oldSecs := splitSections(old)
	head, freshSecs := splitSections(fresh)
	byTitle := map[string]int{}
	for i, s := range oldSecs {
		byTitle[s.title] = i
	}
	for k, s := range freshSecs {
		if s.title == "Machine" {
			continue
		}
		if i, ok := byTitle[s.title]; ok {
			oldSecs[i].body = s.body
			continue
		}
		at := len(oldSecs)
		if i, ok := byTitle["Micro-benchmarks"]; ok {
			at = i
		}
		for _, next := range freshSecs[k+1:] {
			if i, ok := byTitle[next.title]; ok {
				at = i
				break
			}
		}
		oldSecs = append(oldSecs[:at], append([]mdSection{s}, oldSecs[at:]...)...)
		for j, s := range oldSecs {
			byTitle[s.title] = j
		}
	}
	var b strings.Builder
	b.WriteString(head)
	for _, s := range oldSecs {
		fmt.Fprintf(&b, "## %s\n", s.title)
		body := s.body
		if s.title == "Machine" {
			body = strings.TrimRight(dropRerun(body, freshSecs), "\n") + "\n\n" + rerun + "\n\n"
		}
		b.WriteString(body)
	}
	return b.String()
}

type mdSection struct {
	title string
	body  string // everything after the title line, up to the next section
}

// splitSections cuts a report at its "## " headings.
func splitSections(md string) (head string, secs []mdSection) {
	lines := strings.SplitAfter(md, "\n")
	var cur *mdSection
	var hb strings.Builder
	for _, l := range lines {
		if t, ok := strings.CutPrefix(l, "## "); ok {
			secs = append(secs, mdSection{title: strings.TrimRight(t, "\n")})
			cur = &secs[len(secs)-1]
			continue
		}
		if cur == nil {
			hb.WriteString(l)
			continue
		}
		cur.body += l
	}
	return hb.String(), secs
}

// rerunPrefix begins the Machine section's line on sections measured
// again alone; the titles follow ": " up to ", at commit ".
const rerunPrefix = "Measured again alone since"

// dropRerun takes the sections of fresh out of the Machine section's
// earlier lines on re-runs: they are measured again now. A line left with
// no section goes.
func dropRerun(body string, fresh []mdSection) string {
	now := map[string]bool{}
	for _, s := range fresh {
		now[s.title] = true
	}
	lines := strings.SplitAfter(body, "\n")
	var b strings.Builder
	for _, l := range lines {
		if !strings.HasPrefix(l, rerunPrefix) {
			b.WriteString(l)
			continue
		}
		head, rest, ok1 := strings.Cut(l, "): ")
		titles, tail, ok2 := strings.Cut(rest, ", at commit ")
		if !ok1 || !ok2 {
			b.WriteString(l)
			continue
		}
		var kept []string
		for _, t := range strings.Split(titles, "; ") {
			if !now[t] {
				kept = append(kept, t)
			}
		}
		if len(kept) > 0 {
			b.WriteString(head + "): " + strings.Join(kept, "; ") + ", at commit " + tail)
		}
	}
	return strings.ReplaceAll(b.String(), "\n\n\n", "\n\n")
}
