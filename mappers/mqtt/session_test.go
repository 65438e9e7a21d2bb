package mqtt_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// A persistent session that disconnects misses nothing: what is
// published while it is away comes when it reconnects, in order, once.
func TestPersistentSessionResumes(t *testing.T) {
	_, addr := start(t)
	sub := connect5(t, addr, "dev-1", persistent(300))
	sub.subscribe(t, paho.SubscribeOptions{Topic: "cmd/dev-1/#", QoS: 1})
	sub.Disconnect(&paho.Disconnect{})
	sub.nc.Close()

	pub := connect5(t, addr, "ctl", nil)
	const n = 100
	for i := range n {
		pub.publish(t, &paho.Publish{Topic: "cmd/dev-1/set", QoS: 1, Payload: []byte(fmt.Sprint(i))})
	}
	again := connect5(t, addr, "dev-1", persistent(300))
	if !again.connack.SessionPresent {
		t.Fatal("CONNACK without session present")
	}
	for i := range n {
		p := again.next(t)
		if string(p.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q", i, p.Payload)
		}
	}
	again.none(t, 500*time.Millisecond)
}

// A clean start drops what the session had: no subscriptions, no
// session present.
func TestCleanStartDropsTheSession(t *testing.T) {
	_, addr := start(t)
	sub := connect5(t, addr, "dev-2", persistent(300))
	sub.subscribe(t, paho.SubscribeOptions{Topic: "x", QoS: 1})
	sub.Disconnect(&paho.Disconnect{})
	sub.nc.Close()
	c := connect5(t, addr, "dev-2", nil)
	if c.connack.SessionPresent {
		t.Fatal("a clean start has a session present")
	}
	connect5(t, addr, "p", nil).publish(t, &paho.Publish{Topic: "x", QoS: 1, Payload: []byte("1")})
	c.none(t, 500*time.Millisecond)
}

// A second connection with the client id of a live one takes the session
// over: the first is told 0x8E and closed, the second has the session.
func TestSessionTakenOver(t *testing.T) {
	_, addr := start(t)
	first := connect5(t, addr, "dup", persistent(300))
	first.subscribe(t, paho.SubscribeOptions{Topic: "t", QoS: 1})
	second := connect5(t, addr, "dup", persistent(300))
	select {
	case d := <-first.disconnected:
		if d.ReasonCode != 0x8E {
			t.Fatalf("first told 0x%02x, want 0x8E", d.ReasonCode)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first connection was not told it was taken over")
	}
	if !second.connack.SessionPresent {
		t.Fatal("the second connection has no session present")
	}
	connect5(t, addr, "p", nil).publish(t, &paho.Publish{Topic: "t", QoS: 1, Payload: []byte("hi")})
	if p := second.next(t); string(p.Payload) != "hi" {
		t.Fatalf("got %q", p.Payload)
	}
}

// A retained message comes to every new subscription of a matching
// filter, with the retain flag; an empty retained publish clears it;
// retain handling 2 sends none.
func TestRetained(t *testing.T) {
	_, addr := start(t)
	pub := connect5(t, addr, "p", nil)
	pub.publish(t, &paho.Publish{Topic: "status/a", QoS: 1, Retain: true, Payload: []byte("up")})
	pub.publish(t, &paho.Publish{Topic: "status/b", QoS: 1, Retain: true, Payload: []byte("down")})

	s := connect5(t, addr, "s1", nil)
	s.subscribe(t, paho.SubscribeOptions{Topic: "status/+", QoS: 1})
	got := map[string]string{}
	for range 2 {
		p := s.next(t)
		if !p.Retain {
			t.Errorf("%s came without the retain flag", p.Topic)
		}
		got[p.Topic] = string(p.Payload)
	}
	if got["status/a"] != "up" || got["status/b"] != "down" {
		t.Fatalf("retained %v", got)
	}
	// live messages have no retain flag (no retain-as-published)
	pub.publish(t, &paho.Publish{Topic: "status/a", QoS: 1, Retain: true, Payload: []byte("again")})
	if p := s.next(t); p.Retain || string(p.Payload) != "again" {
		t.Fatalf("live %q retain=%v", p.Payload, p.Retain)
	}

	pub.publish(t, &paho.Publish{Topic: "status/b", QoS: 1, Retain: true, Payload: nil})
	s2 := connect5(t, addr, "s2", nil)
	s2.subscribe(t, paho.SubscribeOptions{Topic: "status/b", QoS: 1})
	s2.none(t, 500*time.Millisecond)

	s3 := connect5(t, addr, "s3", nil)
	s3.subscribe(t, paho.SubscribeOptions{Topic: "status/#", QoS: 1, RetainHandling: 2})
	s3.none(t, 500*time.Millisecond)
}

// A will is published when its connection ends without DISCONNECT, and
// not when it ends with one.
func TestWill(t *testing.T) {
	_, addr := start(t)
	s := connect5(t, addr, "watcher", nil)
	s.subscribe(t, paho.SubscribeOptions{Topic: "wills/#", QoS: 1})
	willed := func(id string) func(*paho.Connect) {
		return func(c *paho.Connect) {
			c.WillMessage = &paho.WillMessage{Topic: "wills/" + id, QoS: 1, Payload: []byte(id + " gone")}
		}
	}
	a := connect5(t, addr, "a", willed("a"))
	a.nc.Close() // no DISCONNECT
	if p := s.next(t); p.Topic != "wills/a" || string(p.Payload) != "a gone" {
		t.Fatalf("will %s %q", p.Topic, p.Payload)
	}
	b := connect5(t, addr, "b", willed("b"))
	b.Disconnect(&paho.Disconnect{})
	s.none(t, 500*time.Millisecond)
}

// A will with a delay is not published when the session is resumed
// within the delay.
func TestWillDelay(t *testing.T) {
	_, addr := start(t)
	s := connect5(t, addr, "watcher", nil)
	s.subscribe(t, paho.SubscribeOptions{Topic: "wills/#", QoS: 1})
	delayed := func(c *paho.Connect) {
		persistent(60)(c)
		c.WillMessage = &paho.WillMessage{Topic: "wills/d", QoS: 1, Payload: []byte("d gone")}
		c.WillProperties = &paho.WillProperties{WillDelayInterval: u32(2)}
	}
	d := connect5(t, addr, "d", delayed)
	d.nc.Close()
	connect5(t, addr, "d", delayed) // back within the delay
	s.none(t, 3*time.Second)

	e := connect5(t, addr, "e", func(c *paho.Connect) {
		delayed(c)
		c.WillMessage.Topic = "wills/e"
	})
	start := time.Now()
	e.nc.Close()
	p := s.next(t)
	if p.Topic != "wills/e" {
		t.Fatalf("will on %s", p.Topic)
	}
	if waited := time.Since(start); waited < 2*time.Second {
		t.Fatalf("the will came after %s, before its 2s delay", waited)
	}
}

// Members of a shared subscription split its messages: each message to
// one member, none lost.
func TestSharedSubscription(t *testing.T) {
	env, addr := start(t)
	a := connect5(t, addr, "w1", nil)
	b := connect5(t, addr, "w2", nil)
	a.subscribe(t, paho.SubscribeOptions{Topic: "$share/workers/jobs/#", QoS: 1})
	b.subscribe(t, paho.SubscribeOptions{Topic: "$share/workers/jobs/#", QoS: 1})
	waitShare(t, env.Node.Addr().String(), "mqtt-share/workers/jobs/#", 2)
	pub := connect5(t, addr, "p", nil)
	const n = 60
	for i := range n {
		pub.publish(t, &paho.Publish{Topic: fmt.Sprintf("jobs/%d", i), QoS: 1, Payload: []byte(fmt.Sprint(i))})
	}
	seen := map[string]int{}
	counts := [2]int{}
	deadline := time.After(30 * time.Second)
	for len(seen) < n {
		select {
		case p := <-a.got:
			seen[string(p.Payload)]++
			counts[0]++
		case p := <-b.got:
			seen[string(p.Payload)]++
			counts[1]++
		case <-deadline:
			t.Fatalf("got %d of %d jobs (%v)", len(seen), n, counts)
		}
	}
	for k, v := range seen {
		if v != 1 {
			t.Errorf("job %s delivered %d times", k, v)
		}
	}
	if counts[0] == 0 || counts[1] == 0 {
		t.Errorf("one member got everything: %v", counts)
	}
}

// No local: a client does not get its own publishes on such a
// subscription; subscription identifiers come with each message.
func TestNoLocalAndSubscriptionIdentifier(t *testing.T) {
	_, addr := start(t)
	c := connect5(t, addr, "me", nil)
	ctx := t.Context()
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Properties: &paho.SubscribeProperties{SubscriptionIdentifier: ptr(7)},
		Subscriptions: []paho.SubscribeOptions{{Topic: "chat/#", QoS: 1, NoLocal: true}}}); err != nil {
		t.Fatal(err)
	}
	c.publish(t, &paho.Publish{Topic: "chat/room", QoS: 1, Payload: []byte("mine")})
	connect5(t, addr, "other", nil).publish(t, &paho.Publish{Topic: "chat/room", QoS: 1, Payload: []byte("theirs")})
	p := c.next(t)
	if string(p.Payload) != "theirs" {
		t.Fatalf("got %q first, want theirs (no local)", p.Payload)
	}
	if p.Properties == nil || p.Properties.SubscriptionIdentifier == nil || *p.Properties.SubscriptionIdentifier != 7 {
		t.Fatalf("subscription identifier %+v, want 7", p.Properties)
	}
	c.none(t, 300*time.Millisecond)
}

func ptr(v int) *int { return &v }

// Topic aliases both ways: the client's alias on its publishes is
// resolved; meshka sets an alias on the first message of a topic it
// sends to a client that takes them, and sends only the alias after.
func TestTopicAliases(t *testing.T) {
	_, addr := start(t)
	sub := connect5(t, addr, "s", func(c *paho.Connect) {
		c.Properties = &paho.ConnectProperties{TopicAliasMaximum: u16(2)}
	})
	sub.subscribe(t, paho.SubscribeOptions{Topic: "al/#", QoS: 1})
	pub := connect5(t, addr, "p", nil)
	pub.publish(t, &paho.Publish{Topic: "al/one", QoS: 1, Payload: []byte("1"), Properties: &paho.PublishProperties{TopicAlias: u16(3)}})
	pub.publish(t, &paho.Publish{Topic: "", QoS: 1, Payload: []byte("2"), Properties: &paho.PublishProperties{TopicAlias: u16(3)}})
	first, second := sub.next(t), sub.next(t)
	if first.Topic != "al/one" || string(first.Payload) != "1" || first.Properties == nil || first.Properties.TopicAlias == nil {
		t.Fatalf("first: %s %q %+v, want al/one with an alias", first.Topic, first.Payload, first.Properties)
	}
	if second.Topic != "" || string(second.Payload) != "2" || second.Properties == nil || second.Properties.TopicAlias == nil ||
		*second.Properties.TopicAlias != *first.Properties.TopicAlias {
		t.Fatalf("second: %q %q %+v, want only alias %d", second.Topic, second.Payload, second.Properties, *first.Properties.TopicAlias)
	}
}

func u16(v uint16) *uint16 { return &v }

// An expired message is not sent; one with time left is sent with what
// is left of its interval.
func TestMessageExpiry(t *testing.T) {
	_, addr := start(t)
	sub := connect5(t, addr, "late", persistent(60))
	sub.subscribe(t, paho.SubscribeOptions{Topic: "exp/#", QoS: 1})
	sub.Disconnect(&paho.Disconnect{})
	sub.nc.Close()
	pub := connect5(t, addr, "p", nil)
	pub.publish(t, &paho.Publish{Topic: "exp/short", QoS: 1, Payload: []byte("short"), Properties: &paho.PublishProperties{MessageExpiry: u32(1)}})
	pub.publish(t, &paho.Publish{Topic: "exp/long", QoS: 1, Payload: []byte("long"), Properties: &paho.PublishProperties{MessageExpiry: u32(600)}})
	time.Sleep(2100 * time.Millisecond)
	back := connect5(t, addr, "late", persistent(60))
	p := back.next(t)
	if string(p.Payload) != "long" {
		t.Fatalf("got %q first, want long (short expired)", p.Payload)
	}
	if p.Properties == nil || p.Properties.MessageExpiry == nil || *p.Properties.MessageExpiry > 598 || *p.Properties.MessageExpiry < 500 {
		t.Fatalf("expiry %+v, want what is left of 600 s", p.Properties)
	}
	back.none(t, 300*time.Millisecond)
}

// A message larger than the client's Maximum Packet Size is not sent to
// it (and what follows still is).
func TestClientMaximumPacketSize(t *testing.T) {
	_, addr := start(t)
	sub := connect5(t, addr, "small", func(c *paho.Connect) {
		c.Properties = &paho.ConnectProperties{MaximumPacketSize: u32(100)}
	})
	sub.subscribe(t, paho.SubscribeOptions{Topic: "big/#", QoS: 1})
	pub := connect5(t, addr, "p", nil)
	pub.publish(t, &paho.Publish{Topic: "big/1", QoS: 1, Payload: make([]byte, 200)})
	pub.publish(t, &paho.Publish{Topic: "big/2", QoS: 1, Payload: []byte("fits")})
	if p := sub.next(t); string(p.Payload) != "fits" {
		t.Fatalf("got %d bytes on %s, want only the one that fits", len(p.Payload), p.Topic)
	}
}
