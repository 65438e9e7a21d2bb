package cluster

import "time"

// The views a node took, with when, so an actor that keeps something no
// upstream topic holds (a lease's holder) can tell how long its node has
// owned it: an activation on a node that just became the owner may have
// had a predecessor elsewhere whose state it must relearn first.

// history bounds: views older than historyKeep are forgotten (the
// latest is always kept), and at most historyMax are kept.
const (
	historyKeep = time.Minute
	historyMax  = 64
)

type datedView struct {
	v  *View
	at time.Time
}

// remember records v as the view taken now; m.mu is held.
func (m *Mesh) remember(v *View, now time.Time) {
	if len(m.history) == 0 && !m.trimmed {
		// Its first view holds no other member: this node formed the
		// cluster, and no one owned anything before it.
		m.founder = len(v.Members) == 1 && v.Members[0].Name == m.members.Name()
	}
	m.history = append(m.history, datedView{v: v, at: now})
	for len(m.history) > 1 && (len(m.history) > historyMax || m.history[1].at.Before(now.Add(-historyKeep))) {
		m.history[0] = datedView{}
		m.history = m.history[1:]
		m.trimmed = true
	}
}

// OwnedSince is since when this node has owned the actor of kind and
// identity without a break in the views it took: the zero time when it
// has owned it since it formed the cluster alone (its first view held no
// other member), and now when it does not own it. Views older than a
// minute are forgotten, so the answer is never earlier than that but for
// the zero time.
func (m *Mesh) OwnedSince(kind, identity string) time.Time {
	self := m.members.Name()
	m.mu.Lock()
	defer m.mu.Unlock()
	since := time.Now()
	for i := len(m.history) - 1; i >= 0; i-- {
		h := m.history[i]
		if o, ok := place(h.v, kind, identity, m.spread[kind]); !ok || o.Name != self {
			return since
		}
		since = h.at
	}
	if m.founder && !m.trimmed && len(m.history) > 0 {
		return time.Time{}
	}
	return since
}
