package main

import (
	"fmt"
	"strings"
)

// mergeReports puts the sections of fresh, a run of some measurements
// (-only), into old, the report of an earlier run: each fresh section
// replaces old's of the same title, or, when old has none, goes before
// the micro-benchmarks (at the end without them); every other section of
// old is kept as it was measured. old's Machine section says which
// sections were measured again, and at which commit and date.
func mergeReports(old, fresh, rerun string) string {
	oldHead, oldSecs := splitSections(old)
	_, freshSecs := splitSections(fresh)
	byTitle := map[string]int{}
	for i, s := range oldSecs {
		byTitle[s.title] = i
	}
	for _, s := range freshSecs {
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
		oldSecs = append(oldSecs[:at], append([]mdSection{s}, oldSecs[at:]...)...)
		for j, s := range oldSecs {
			byTitle[s.title] = j
		}
	}
	var b strings.Builder
	b.WriteString(oldHead)
	for _, s := range oldSecs {
		fmt.Fprintf(&b, "## %s\n", s.title)
		body := s.body
		if s.title == "Machine" {
			body = strings.TrimRight(body, "\n") + "\n\n" + rerun + "\n\n"
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
