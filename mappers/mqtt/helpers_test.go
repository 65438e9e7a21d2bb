package mqtt_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/mappers/mqtt"
	"github.com/meshka/meshka/node"
)

// mqttTopics are the mapper's default topics, created in the upstream
// before the node starts.
var mqttTopics = kfake.SeedTopics(3, "mqtt-messages", "mqtt-retained", "mqtt-sessions")

// withMQTT serves MQTT on a free port.
func withMQTT(cfg *config.Config) { cfg.MQTT.Listen = "127.0.0.1:0" }

// start runs an upstream with the mapper's topics and a node serving
// MQTT, and returns the MQTT address.
func start(t testing.TB, opts ...testenv.Option) (*testenv.Env, string) {
	t.Helper()
	env := testenv.StartWith(t, []kfake.Opt{mqttTopics}, append([]testenv.Option{withMQTT}, opts...)...)
	return env, brokerOf(t, env.Node).Addr().String()
}

func brokerOf(t testing.TB, n *node.Node) *mqtt.Broker {
	t.Helper()
	b, ok := n.Binding("mqtt")
	if !ok {
		t.Fatal("the node serves no MQTT")
	}
	return b.(*mqtt.Broker)
}

// client5 is an MQTT 5 client (paho.golang) and what it receives.
type client5 struct {
	*paho.Client
	got          chan *paho.Publish
	disconnected chan *paho.Disconnect
	connack      *paho.Connack
	nc           net.Conn
}

// connect5 connects an MQTT 5 client; cp adjusts the CONNECT.
func connect5(t testing.TB, addr, clientID string, cp func(*paho.Connect)) *client5 {
	t.Helper()
	c, err := dial5(t, addr, clientID, cp)
	if err != nil {
		t.Fatalf("connect %s: %v", clientID, err)
	}
	return c
}

func dial5(t testing.TB, addr, clientID string, cp func(*paho.Connect)) (*client5, error) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &client5{got: make(chan *paho.Publish, 10000), disconnected: make(chan *paho.Disconnect, 1), nc: nc}
	c.Client = paho.NewClient(paho.ClientConfig{Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			c.got <- pr.Packet
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) { c.disconnected <- d },
		OnClientError:      func(error) {},
	})
	connect := &paho.Connect{ClientID: clientID, KeepAlive: 30, CleanStart: true}
	if cp != nil {
		cp(connect)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, connect)
	c.connack = ca
	if err != nil {
		nc.Close()
		return c, err
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}); nc.Close() })
	return c, nil
}

func (c *client5) subscribe(t testing.TB, opts ...paho.SubscribeOptions) *paho.Suback {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: opts})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return sa
}

func (c *client5) publish(t testing.TB, p *paho.Publish) *paho.PublishResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := c.Publish(ctx, p)
	if err != nil {
		t.Fatalf("publish %s: %v", p.Topic, err)
	}
	return r
}

// next is the next message received, within 20 s.
func (c *client5) next(t testing.TB) *paho.Publish {
	t.Helper()
	select {
	case p := <-c.got:
		return p
	case <-time.After(20 * time.Second):
		t.Fatal("no message within 20s")
		return nil
	}
}

// none checks that nothing comes within d.
func (c *client5) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case p := <-c.got:
		t.Fatalf("unexpected message on %s: %q", p.Topic, p.Payload)
	case <-time.After(d):
	}
}

// consume reads n records of topic from the upstream directly.
func consume(t testing.TB, env *testenv.Env, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Upstream.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(out), n, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func u32(v uint32) *uint32 { return &v }

// persistent makes a CONNECT resume its session, kept for expiry seconds.
func persistent(expiry uint32) func(*paho.Connect) {
	return func(c *paho.Connect) {
		c.CleanStart = false
		c.Properties = &paho.ConnectProperties{SessionExpiryInterval: u32(expiry)}
	}
}

// waitShare waits until the consumer group of a shared subscription is
// stable with members members, each assigned partitions, as Kafka tools
// see it through the node at kafkaAddr.
func waitShare(t testing.TB, kafkaAddr, group string, members int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		gs, err := adm.DescribeGroups(ctx, group)
		cancel()
		if err == nil {
			g := gs[group]
			assigned := 0
			for _, m := range g.Members {
				if ca, ok := m.Assigned.AsConsumer(); ok && len(ca.Topics) > 0 {
					assigned++
				}
			}
			if g.State == "Stable" && len(g.Members) == members && assigned == members {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s not stable with %d assigned members: %+v %v", group, members, gs, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// consumeWithin reads up to n records of topic from the upstream, for at
// most d, and returns what it read.
func consumeWithin(t testing.TB, env *testenv.Env, topic string, n int, d time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Upstream.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}
