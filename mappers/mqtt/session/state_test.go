package session

import (
	"testing"
	"time"
)

func TestEncodeDecode(t *testing.T) {
	s := &State{Expiry: 60, Node: 2}
	s.Subscribe(Subscription{Filter: "a/#", QoS: 1})
	s.Send(Pending{PacketID: 7, Sub: "a/#", Topic: "m", Partition: 1, Offset: 10, QoS: 1})
	s.Receive(9)
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Expiry != 60 || len(got.Subscriptions) != 1 || got.Subscriptions[0].Sent["m"][1] != 11 || !got.Received(9) {
		t.Fatalf("decoded %+v", got)
	}
	if _, err := Decode([]byte(`{"v":2}`)); err == nil {
		t.Error("a newer encoding decoded")
	}
	if _, err := Decode([]byte(`{`)); err == nil {
		t.Error("bad JSON decoded")
	}
}

// A resumed subscription reads from its first unacknowledged message:
// what was acknowledged is skipped, what was not is sent again with its
// packet id, what is new is new.
func TestResumeAndReplay(t *testing.T) {
	s := &State{}
	s.Subscribe(Subscription{Filter: "x", QoS: 1})
	for o := int64(0); o < 5; o++ {
		s.Send(Pending{PacketID: uint16(o + 1), Sub: "x", Topic: "m", Partition: 0, Offset: o, QoS: 1})
	}
	s.Acknowledged(1)
	s.Acknowledged(3)
	if at := s.ResumeAt("x", "m"); at[0] != 1 {
		t.Fatalf("resume at %v, want partition 0 at 1", at)
	}
	want := []Replay{Done, Again, Done, Again, Again, Fresh}
	for o, w := range want {
		got, pd := s.Replayed("x", "m", 0, int64(o))
		if got != w {
			t.Errorf("offset %d: %v, want %v", o, got, w)
		}
		if got == Again && pd.PacketID != uint16(o+1) {
			t.Errorf("offset %d: packet id %d, want %d", o, pd.PacketID, o+1)
		}
	}
	s.Release(2)
	if got, _ := s.Replayed("x", "m", 0, 1); got != Done {
		t.Errorf("a released message replays as %v, want Done", got)
	}
	if !s.Unsubscribe("x") || s.Unsubscribe("x") {
		t.Error("unsubscribe")
	}
}

func TestSubscribeReplacesAndKeepsPosition(t *testing.T) {
	s := &State{}
	if !s.Subscribe(Subscription{Filter: "a", QoS: 0}) {
		t.Fatal("first subscribe not new")
	}
	s.Handled("a", "m", 2, 41)
	if s.Subscribe(Subscription{Filter: "a", QoS: 2}) {
		t.Fatal("second subscribe of one filter is new")
	}
	sub, _ := s.Subscription("a")
	if sub.QoS != 2 || sub.Sent["m"][2] != 42 {
		t.Fatalf("replaced subscription %+v", sub)
	}
	if s.Subscribe(Subscription{Filter: "a", Share: "g"}) != true {
		t.Fatal("a shared subscription of the same filter is another subscription")
	}
}

func TestExpired(t *testing.T) {
	now := time.Now()
	s := &State{Expiry: 10}
	if s.Expired(now) {
		t.Error("a connected session expired")
	}
	s.Disconnected = now.Add(-11 * time.Second).UnixMilli()
	if !s.Expired(now) {
		t.Error("not expired 11 s after its 10 s expiry")
	}
	s.Disconnected = now.Add(-9 * time.Second).UnixMilli()
	if s.Expired(now) {
		t.Error("expired 9 s after")
	}
}

func TestInbound(t *testing.T) {
	s := &State{}
	s.Receive(5)
	s.Receive(5)
	if !s.Received(5) || len(s.Inbound) != 1 {
		t.Fatalf("inbound %v", s.Inbound)
	}
	if !s.Complete(5) || s.Complete(5) || s.Received(5) {
		t.Fatal("complete")
	}
}

func TestPacketIDs(t *testing.T) {
	var p PacketIDs
	p.Hold(1)
	id, ok := p.Take()
	if !ok || id != 2 {
		t.Fatalf("took %d, want 2 (1 held)", id)
	}
	for range 65533 {
		if _, ok := p.Take(); !ok {
			t.Fatal("ran out early")
		}
	}
	if _, ok := p.Take(); ok {
		t.Fatal("took a 65536th id")
	}
	p.Free(300)
	if id, ok := p.Take(); !ok || id != 300 {
		t.Fatalf("took %d, want the freed 300", id)
	}
}

// FuzzDecode: any bytes in the sessions topic decode to a state or an
// error, never a panic; what decodes encodes and decodes again the same.
func FuzzDecode(f *testing.F) {
	s := &State{Expiry: 5}
	s.Subscribe(Subscription{Filter: "a/+", QoS: 2, Identifier: 3})
	s.Send(Pending{PacketID: 1, Sub: "a/+", Topic: "m", Offset: 4, QoS: 2})
	good, _ := Encode(s)
	f.Add(good)
	f.Add([]byte(`{"v":1,"subscriptions":[{"filter":"x","sent":{"t":{"0":-5}}}]}`))
	f.Add([]byte(`{"v":1,"outbound":[{"pid":0}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := Decode(b)
		if err != nil {
			return
		}
		st.Prune()
		st.ResumeAt("x", "t")
		st.Replayed("x", "t", 0, 0)
		again, err := Encode(st.Clone())
		if err != nil {
			t.Fatalf("a decoded state does not encode: %v", err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("an encoded state does not decode: %v", err)
		}
	})
}
