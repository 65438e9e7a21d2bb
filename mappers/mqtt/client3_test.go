package mqtt_test

import (
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"
)

// client3 is an MQTT 3.1.1 client (eclipse/paho.mqtt.golang) and what
// it receives.
type client3 struct {
	paho3.Client
	got  chan paho3.Message
	lost chan error
}

// connect3 connects an MQTT 3.1.1 client with a clean session that does
// not reconnect by itself: a connection the node cut stays cut.
func connect3(t testing.TB, addr, clientID string) *client3 {
	t.Helper()
	c := &client3{got: make(chan paho3.Message, 10000), lost: make(chan error, 1)}
	opts := paho3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).SetProtocolVersion(4).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).SetKeepAlive(30 * time.Second).
		SetOrderMatters(false).
		SetDefaultPublishHandler(func(_ paho3.Client, m paho3.Message) { c.got <- m }).
		SetConnectionLostHandler(func(_ paho3.Client, err error) {
			select {
			case c.lost <- err:
			default:
			}
		})
	c.Client = paho3.NewClient(opts)
	wait3(t, "connect "+clientID, c.Connect())
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// wait3 waits, within 20 s, for a token of paho.mqtt.golang's.
func wait3(t testing.TB, what string, tok paho3.Token) {
	t.Helper()
	if !tok.WaitTimeout(20 * time.Second) {
		t.Fatalf("%s: no answer within 20s", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (c *client3) subscribe(t testing.TB, filter string, qos byte) {
	t.Helper()
	wait3(t, "subscribe "+filter, c.Subscribe(filter, qos, nil))
}

func (c *client3) publish(t testing.TB, topic string, qos byte, retained bool, payload string) {
	t.Helper()
	wait3(t, "publish "+topic, c.Publish(topic, qos, retained, payload))
}

// next is the next message received, within 20 s.
func (c *client3) next(t testing.TB) paho3.Message {
	t.Helper()
	select {
	case m := <-c.got:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no message within 20s")
		return nil
	}
}
