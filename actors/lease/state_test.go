package lease

import (
	"testing"
	"time"
)

func holder(name string) *Holder {
	return &Holder{Address: "node-" + name, Id: "lease$" + name, Description: name}
}

func acquire(h *Holder) *AcquireRequest {
	return &AcquireRequest{Holder: h, TimeoutMillis: 60_000, RevokeTimeoutMillis: 5_000, RenewMillis: 1_000}
}

// answers are the AcquireResponses out sends to reply.
func answers(out []Out, reply string) []*AcquireResponse {
	var got []*AcquireResponse
	for _, o := range out {
		if o.Reply == reply {
			got = append(got, o.Msg.(*AcquireResponse))
		}
	}
	return got
}

// revokes are the Revokes out sends to h.
func revokes(out []Out, h *Holder) []*Revoke {
	var got []*Revoke
	for _, o := range out {
		if o.Holder != nil && same(o.Holder, h) {
			got = append(got, o.Msg.(*Revoke))
		}
	}
	return got
}

// granted is the epoch out grants to reply, failing the test otherwise.
func granted(t *testing.T, out []Out, reply string) uint64 {
	t.Helper()
	as := answers(out, reply)
	if len(as) != 1 || as[0].Code != Code_OK || as[0].Epoch == 0 {
		t.Fatalf("%s: want one grant, got %v", reply, as)
	}
	return as[0].Epoch
}

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// A free lease is granted at once; a held one is revoked for the
// acquirer, who is granted it with a higher epoch once the holder
// releases it.
func TestGrantRevokeRelease(t *testing.T) {
	s := New(t0, time.Time{}, nil)
	a, b := holder("a"), holder("b")
	ea := granted(t, s.Acquire(t0, acquire(a), "ra", nil), "ra")
	if ea < uint64(t0.UnixMicro()) {
		t.Fatalf("epoch %d is not seeded from the clock", ea)
	}
	out := s.Acquire(t0.Add(time.Second), acquire(b), "rb", nil)
	if len(answers(out, "rb")) != 0 {
		t.Fatalf("granted while held: %v", out)
	}
	rv := revokes(out, a)
	if len(rv) != 1 || rv[0].Epoch != ea || rv[0].Taker != "b" || rv[0].Lost {
		t.Fatalf("the holder was told %v", rv)
	}
	// The holder asking again gets its own grant, not a second one.
	if again := answers(s.Acquire(t0.Add(time.Second), acquire(a), "ra2", nil), "ra2"); len(again) != 1 || again[0].Epoch != ea {
		t.Fatalf("the holder asking again: %v", again)
	}
	resp, out := s.Release(t0.Add(2*time.Second), &ReleaseRequest{Holder: a, Epoch: ea}, nil)
	if resp.Code != Code_OK {
		t.Fatal(resp)
	}
	if eb := granted(t, out, "rb"); eb <= ea {
		t.Fatalf("epoch %d after %d", eb, ea)
	}
	if h, _ := s.Holder(); !same(h, b) {
		t.Fatalf("holder %v", h)
	}
	// Releasing again, or what was never held, is no error.
	if resp, _ := s.Release(t0.Add(3*time.Second), &ReleaseRequest{Holder: a, Epoch: ea}, nil); resp.Code != Code_OK {
		t.Fatal(resp)
	}
	if resp, _ := s.Renew(t0.Add(3*time.Second), &RenewRequest{Holder: a, Epoch: ea}, nil); resp.Code != Code_NOT_HOLDER {
		t.Fatalf("the old holder renewing: %v", resp)
	}
}

// A holder that never releases loses the lease once the acquirer's
// revoke timeout passes.
func TestRevokeTimeout(t *testing.T) {
	s := New(t0, time.Time{}, nil)
	a, b := holder("a"), holder("b")
	granted(t, s.Acquire(t0, acquire(a), "ra", nil), "ra")
	req := acquire(b)
	req.RevokeTimeoutMillis = 3000
	s.Acquire(t0.Add(time.Second), req, "rb", nil)
	for at := t0.Add(time.Second); at.Before(t0.Add(4 * time.Second)); at = at.Add(500 * time.Millisecond) {
		s.Renew(at, &RenewRequest{Holder: a, Epoch: mustEpoch(t, s, a), RenewMillis: 1000}, nil)
		if out := s.Tick(at, nil); len(answers(out, "rb")) != 0 {
			t.Fatalf("granted at %v, before the revoke timeout", at.Sub(t0))
		}
	}
	if next := s.Next(t0.Add(3900 * time.Millisecond)); next.After(t0.Add(4 * time.Second)) {
		t.Fatalf("next tick at %v, after the revoke timeout", next.Sub(t0))
	}
	out := s.Tick(t0.Add(4*time.Second), nil)
	granted(t, out, "rb")
	if rv := revokes(out, a); len(rv) != 1 || !rv[0].Lost {
		t.Fatalf("the old holder was told %v", rv)
	}
}

func mustEpoch(t *testing.T, s *State, h *Holder) uint64 {
	t.Helper()
	got, e := s.Holder()
	if !same(got, h) {
		t.Fatalf("holder %v, want %v", got, h)
	}
	return e
}

// Of several acquirers the latest wins: the one waiting is answered
// SUPERSEDED at once, and the holder learns of the new taker.
func TestLatestAcquirerWins(t *testing.T) {
	s := New(t0, time.Time{}, nil)
	a, b, c := holder("a"), holder("b"), holder("c")
	ea := granted(t, s.Acquire(t0, acquire(a), "ra", nil), "ra")
	s.Acquire(t0.Add(time.Second), acquire(b), "rb", nil)
	out := s.Acquire(t0.Add(2*time.Second), acquire(c), "rc", nil)
	if as := answers(out, "rb"); len(as) != 1 || as[0].Code != Code_SUPERSEDED {
		t.Fatalf("the earlier acquirer got %v", as)
	}
	if rv := revokes(out, a); len(rv) != 1 || rv[0].Taker != "c" {
		t.Fatalf("the holder was told %v", rv)
	}
	if w := s.Waiting(); !same(w, c) {
		t.Fatalf("waiting: %v", w)
	}
	_, out = s.Release(t0.Add(3*time.Second), &ReleaseRequest{Holder: a, Epoch: ea}, nil)
	granted(t, out, "rc")
	if len(answers(out, "rb")) != 0 {
		t.Fatal("the superseded acquirer was answered twice")
	}
}

// A holder that stops renewing is dropped after DropAfter intervals, and
// its late renew is refused; one renewing an epoch not its own too.
func TestRenewWindow(t *testing.T) {
	s := New(t0, time.Time{}, nil)
	a := holder("a")
	ea := granted(t, s.Acquire(t0, acquire(a), "ra", nil), "ra") // renews every second
	if resp, _ := s.Renew(t0.Add(time.Second), &RenewRequest{Holder: a, Epoch: ea + 1, RenewMillis: 1000}, nil); resp.Code != Code_NOT_HOLDER {
		t.Fatalf("a renew of another epoch: %v", resp)
	}
	if resp, _ := s.Renew(t0.Add(time.Second), &RenewRequest{Holder: a, Epoch: ea, RenewMillis: 1000}, nil); resp.Code != Code_OK {
		t.Fatal(resp)
	}
	if next := s.Next(t0.Add(time.Second)); !next.Equal(t0.Add(4 * time.Second)) {
		t.Fatalf("next tick %v, want the drop at 4s", next.Sub(t0))
	}
	s.Tick(t0.Add(3900*time.Millisecond), nil)
	if h, _ := s.Holder(); h == nil {
		t.Fatal("dropped before its window ended")
	}
	out := s.Tick(t0.Add(4*time.Second), nil)
	if h, _ := s.Holder(); h != nil {
		t.Fatal("not dropped")
	}
	if rv := revokes(out, a); len(rv) != 1 || !rv[0].Lost {
		t.Fatalf("the dropped holder was told %v", rv)
	}
	if resp, _ := s.Renew(t0.Add(5*time.Second), &RenewRequest{Holder: a, Epoch: ea, RenewMillis: 1000}, nil); resp.Code != Code_NOT_HOLDER {
		t.Fatalf("a late renew: %v", resp)
	}
}

// A holder whose node is gone loses the lease to a waiting acquirer at
// once, without waiting for the revoke timeout; an acquirer whose node
// is gone is not granted it.
func TestDeadHolder(t *testing.T) {
	s := New(t0, time.Time{}, nil)
	a, b, c := holder("a"), holder("b"), holder("c")
	granted(t, s.Acquire(t0, acquire(a), "ra", nil), "ra")
	dead := map[string]bool{}
	alive := func(h *Holder) bool { return !dead[h.Id] }
	s.Acquire(t0.Add(time.Second), acquire(b), "rb", alive)
	dead[a.Id] = true
	granted(t, s.Tick(t0.Add(1250*time.Millisecond), alive), "rb")

	s.Acquire(t0.Add(2*time.Second), acquire(c), "rc", alive)
	dead[c.Id] = true
	out := s.Tick(t0.Add(2250*time.Millisecond), alive)
	if s.Waiting() != nil || len(out) != 0 {
		t.Fatalf("a dead acquirer still waits: %v", out)
	}
	if h, _ := s.Holder(); !same(h, b) {
		t.Fatalf("holder %v", h)
	}
}

// An acquirer that gives up withdraws: it is never granted the lease.
// One that is not granted within its timeout is answered TIMEOUT.
func TestWithdrawAndTimeout(t *testing.T) {
	s := New(t0, time.Time{}, nil)
	a, b := holder("a"), holder("b")
	ea := granted(t, s.Acquire(t0, acquire(a), "ra", nil), "ra")
	s.Acquire(t0, acquire(b), "rb", nil)
	s.Release(t0.Add(time.Second), &ReleaseRequest{Holder: b}, nil)
	if s.Waiting() != nil {
		t.Fatal("still waiting after withdrawing")
	}
	if _, out := s.Release(t0.Add(2*time.Second), &ReleaseRequest{Holder: a, Epoch: ea}, nil); len(out) != 0 {
		t.Fatalf("after the holder released: %v", out)
	}

	s = New(t0, time.Time{}, nil)
	granted(t, s.Acquire(t0, acquire(a), "ra", nil), "ra")
	req := acquire(b)
	req.TimeoutMillis, req.RevokeTimeoutMillis = 1000, 10_000
	s.Acquire(t0, req, "rb", nil)
	s.Renew(t0.Add(900*time.Millisecond), &RenewRequest{Holder: a, Epoch: ea, RenewMillis: 1000}, nil)
	if as := answers(s.Tick(t0.Add(time.Second), nil), "rb"); len(as) != 1 || as[0].Code != Code_TIMEOUT {
		t.Fatalf("past its timeout: %v", as)
	}
}

// A new activation grants nothing during its grace period, even when
// nobody holds the lease; a holder that renews meanwhile is adopted with
// its epoch, told to give the lease up for the acquirer, and the grant
// that follows has a higher epoch. Of two holders renewing, the later
// grant (the higher epoch) is kept.
func TestGraceAdoptsTheSurvivingHolder(t *testing.T) {
	grace := t0.Add(Grace)
	s := New(t0, grace, nil)
	a, b, stale := holder("a"), holder("b"), holder("stale")
	const ea = uint64(1 << 60) // from a clock ahead of this node's
	if out := s.Acquire(t0, acquire(b), "rb", nil); len(answers(out, "rb")) != 0 {
		t.Fatal("granted during the grace period")
	}
	if resp, _ := s.Renew(t0.Add(time.Second), &RenewRequest{Holder: stale, Epoch: ea - 5, RenewMillis: 1000}, nil); resp.Code != Code_OK {
		t.Fatalf("the first holder to renew is not adopted: %v", resp)
	}
	resp, out := s.Renew(t0.Add(time.Second), &RenewRequest{Holder: a, Epoch: ea, RenewMillis: 1000}, nil)
	if resp.Code != Code_OK {
		t.Fatalf("a later grant's holder is not adopted: %v", resp)
	}
	if rv := revokes(out, stale); len(rv) != 1 || !rv[0].Lost {
		t.Fatalf("the stale holder was told %v", rv)
	}
	if rv := revokes(out, a); len(rv) != 1 || rv[0].Taker != "b" {
		t.Fatalf("the adopted holder was told %v", rv)
	}
	if resp, _ := s.Renew(t0.Add(2*time.Second), &RenewRequest{Holder: stale, Epoch: ea - 5, RenewMillis: 1000}, nil); resp.Code != Code_NOT_HOLDER {
		t.Fatalf("the stale holder renewing again: %v", resp)
	}
	_, out = s.Release(t0.Add(2*time.Second), &ReleaseRequest{Holder: a, Epoch: ea}, nil)
	if len(answers(out, "rb")) != 0 {
		t.Fatal("granted during the grace period after the release")
	}
	if next := s.Next(t0.Add(2 * time.Second)); next.After(grace) {
		t.Fatalf("next tick %v, after the grace period", next.Sub(t0))
	}
	if eb := granted(t, s.Tick(grace, nil), "rb"); eb <= ea {
		t.Fatalf("epoch %d granted after the adopted %d", eb, ea)
	}
}

// Out of the grace period, a renewing holder is adopted only while the
// lease is free and its epoch is above any this activation saw.
func TestAdoptOnlyWhenFree(t *testing.T) {
	s := New(t0, time.Time{}, nil)
	a, b := holder("a"), holder("b")
	eb := granted(t, s.Acquire(t0, acquire(b), "rb", nil), "rb")
	if resp, _ := s.Renew(t0, &RenewRequest{Holder: a, Epoch: eb + 100}, nil); resp.Code != Code_NOT_HOLDER {
		t.Fatalf("adopted over the holder: %v", resp)
	}
	s.Release(t0, &ReleaseRequest{Holder: b, Epoch: eb}, nil)
	if resp, _ := s.Renew(t0, &RenewRequest{Holder: a, Epoch: eb - 1}, nil); resp.Code != Code_NOT_HOLDER {
		t.Fatalf("adopted below a released epoch: %v", resp)
	}
	if resp, _ := s.Renew(t0, &RenewRequest{Holder: a, Epoch: eb + 1}, nil); resp.Code != Code_OK {
		t.Fatalf("not adopted while free: %v", resp)
	}
}

// A lease nobody holds or waits for is idle from its activation or
// its release on; one stopping answers the acquirer waiting MOVED.
func TestIdleAndStop(t *testing.T) {
	s := New(t0, time.Time{}, nil)
	if !s.IdleSince().Equal(t0) || !s.Next(t0).IsZero() {
		t.Fatalf("a new activation: idle since %v, next tick %v", s.IdleSince(), s.Next(t0))
	}
	a, b := holder("a"), holder("b")
	at := t0.Add(10 * time.Second)
	ea := granted(t, s.Acquire(at, acquire(a), "ra", nil), "ra")
	if !s.IdleSince().IsZero() {
		t.Fatal("idle while held")
	}
	s.Release(at.Add(time.Second), &ReleaseRequest{Holder: a, Epoch: ea}, nil)
	if !s.IdleSince().Equal(at.Add(time.Second)) {
		t.Fatalf("idle since %v, not from the release", s.IdleSince())
	}
	s.Acquire(at, acquire(a), "ra", nil)
	s.Acquire(at, acquire(b), "rb", nil)
	if as := answers(s.Stop(), "rb"); len(as) != 1 || as[0].Code != Code_MOVED {
		t.Fatalf("stopping: %v", as)
	}
}

// Epochs of a node's clock increase across activations, whatever the
// wall clock says.
func TestClock(t *testing.T) {
	var c Clock
	first := New(t0, time.Time{}, &c)
	a := holder("a")
	e1 := granted(t, first.Acquire(t0, acquire(a), "r1", nil), "r1")
	second := New(t0, time.Time{}, &c) // the same instant: the actor passivated and came back
	e2 := granted(t, second.Acquire(t0.Add(-time.Hour), acquire(a), "r2", nil), "r2")
	if e2 <= e1 {
		t.Fatalf("epoch %d after %d", e2, e1)
	}
}

func TestParseIdentity(t *testing.T) {
	name, id, err := ParseIdentity(Identity("mqtt-session", "client/with/slashes"))
	if err != nil || name != "mqtt-session" || id != "client/with/slashes" {
		t.Fatalf("%q %q %v", name, id, err)
	}
	for _, bad := range []string{"", "/x", "x/", "noslash"} {
		if _, _, err := ParseIdentity(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
