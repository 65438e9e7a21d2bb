package group

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribeAndDelete(t *testing.T) {
	h := newHarness(t, Config{})
	if d := h.g.Describe(); d.Group != "g" || d.State != "Dead" || len(d.Members) != 0 || d.ErrorCode != 0 {
		t.Fatalf("describe of an unused group: %+v", d)
	}
	ids, _ := h.form("a", "b")
	d := h.g.Describe()
	if d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "range" || len(d.Members) != 2 {
		t.Fatalf("describe Stable: %+v", d)
	}
	for i, m := range d.Members {
		if m.MemberID != ids[i] || m.ClientID != []string{"a", "b"}[i] || m.ClientHost != "/10.0.0.1" {
			t.Fatalf("member %d: %+v", i, m)
		}
		if !bytes.Equal(m.ProtocolMetadata, consumerMeta("t1")) || string(m.MemberAssignment) != "to-"+ids[i] {
			t.Fatalf("member %d metadata %q assignment %q", i, m.ProtocolMetadata, m.MemberAssignment)
		}
	}
	if code := h.g.Delete(); code != codeNonEmptyGroup {
		t.Fatalf("delete of a Stable group: %d", code)
	}

	none(t, h.join(joinReq(3, "", nil, rangeProto("t1")), "c", "c"), "c")
	d = h.g.Describe()
	if d.State != "PreparingRebalance" || d.Protocol != "" || len(d.Members) != 3 || d.Members[0].ProtocolMetadata != nil {
		t.Fatalf("describe while rebalancing: %+v", d)
	}

	h.advance(30 * time.Second) // a and b went silent: c alone forms a generation
	h.advance(30 * time.Second) // and goes silent too
	if s := h.g.Summary(); s.State != "Empty" || s.ProtocolType != "consumer" {
		t.Fatalf("summary after everyone went: %+v", s)
	}
	if code := h.g.Delete(); code != 0 {
		t.Fatalf("delete of an Empty group: %d", code)
	}
	if s := h.g.Summary(); s.State != "Dead" || s.ProtocolType != "" {
		t.Fatalf("summary after delete: %+v", s)
	}

	// A deleted group id can be used again, from generation 1.
	r := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(3, "", nil, rangeProto("t1")), "a", "a"), "a")
	if r.ErrorCode != 0 || r.Generation != 1 {
		t.Fatalf("join after delete: %+v", r)
	}
}

func TestInitialRebalanceDelay(t *testing.T) {
	h := newHarness(t, Config{InitialRebalanceDelay: 3 * time.Second})
	none(t, h.join(joinReq(3, "", nil, rangeProto("t1")), "a", "a"), "a")
	none(t, h.advance(time.Second), "a")
	none(t, h.join(joinReq(3, "", nil, rangeProto("t1")), "b", "b"), "b")
	out := h.advance(2 * time.Second)
	none(t, out, "a") // b came during the delay: wait once more
	if at, _ := h.g.NextDeadline(); !at.Equal(h.now.Add(3 * time.Second)) {
		t.Fatalf("next deadline %v, want 3s on", at)
	}
	out = h.advance(3 * time.Second)
	ra, rb := only[*kmsg.JoinGroupResponse](t, out, "a"), only[*kmsg.JoinGroupResponse](t, out, "b")
	if ra.Generation != 1 || rb.Generation != 1 || len(ra.Members) != 2 {
		t.Fatalf("after the delay: %+v / %+v", ra, rb)
	}
}

func TestShutdownAnswersParkedRequests(t *testing.T) {
	h := newHarness(t, Config{})
	ids, _ := h.form("a", "b")
	none(t, h.join(joinReq(9, ids[0], nil, rangeProto("t1")), "a", "a"), "a")
	out := h.g.Shutdown()
	if r := only[*kmsg.JoinGroupResponse](t, out, "a"); r.ErrorCode != codeNotCoordinator || r.Generation != -1 || r.MemberID != ids[0] {
		t.Fatalf("parked join at shutdown: %+v", r)
	}
	if len(out) != 1 {
		t.Fatalf("%d replies, want 1", len(out))
	}
}

func TestIdentity(t *testing.T) {
	id := Identity("up", "team/orders")
	if id != "up/team/orders" {
		t.Fatalf("identity %q", id)
	}
	u, g, err := ParseIdentity(id)
	if err != nil || u != "up" || g != "team/orders" {
		t.Fatalf("parse: %q %q %v", u, g, err)
	}
	if _, _, err := ParseIdentity("no-separator"); err == nil {
		t.Fatal("identity without a separator parsed")
	}
}
