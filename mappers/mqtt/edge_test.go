package mqtt_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"os"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testcert"
	"github.com/meshka/meshka/internal/testenv"
)

// An MQTT 3.1.1 client (paho.mqtt.golang) publishes and subscribes as a
// 5 client does.
func TestMQTT311(t *testing.T) {
	_, addr := start(t)
	got := make(chan pahov3.Message, 10)
	opts := pahov3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("v3").SetCleanSession(true).SetAutoReconnect(false)
	cl := pahov3.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer cl.Disconnect(100)
	if tok := cl.Subscribe("v3/#", 1, func(_ pahov3.Client, m pahov3.Message) { got <- m }); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	for qos := byte(0); qos <= 2; qos++ {
		if tok := cl.Publish("v3/t", qos, false, []byte{'0' + qos}); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatalf("publish QoS %d: %v", qos, tok.Error())
		}
		select {
		case m := <-got:
			if m.Topic() != "v3/t" || string(m.Payload()) != string('0'+qos) || m.Qos() != min(qos, 1) {
				t.Fatalf("got %s %q QoS %d", m.Topic(), m.Payload(), m.Qos())
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("QoS %d publish not delivered", qos)
		}
	}
}

func withUser(t testing.TB, name, password string, anonymous bool) func(*config.Config) {
	cred, err := auth.NewCredential(auth.ScramSHA256, name, password, 4096)
	if err != nil {
		t.Fatal(err)
	}
	return func(cfg *config.Config) {
		cfg.Security.Users = append(cfg.Security.Users, config.User{Name: name, ScramSHA256: cred})
		cfg.MQTT.AllowAnonymous = anonymous
	}
}

// A username and password are checked against security.users; without
// anonymous access, a CONNECT without them is refused.
func TestUsernamePassword(t *testing.T) {
	_, addr := start(t, withUser(t, "dev", "s3cret", false))
	connect5(t, addr, "ok", func(c *paho.Connect) {
		c.Username, c.UsernameFlag, c.Password, c.PasswordFlag = "dev", true, []byte("s3cret"), true
	})
	for name, cp := range map[string]func(*paho.Connect){
		"wrong password": func(c *paho.Connect) {
			c.Username, c.UsernameFlag, c.Password, c.PasswordFlag = "dev", true, []byte("nope"), true
		},
		"unknown user": func(c *paho.Connect) {
			c.Username, c.UsernameFlag, c.Password, c.PasswordFlag = "who", true, []byte("s3cret"), true
		},
		"anonymous": nil,
	} {
		c, err := dial5(t, addr, "bad", cp)
		if err == nil {
			t.Errorf("%s: connected", name)
			continue
		}
		want := byte(0x86)
		if name == "anonymous" {
			want = 0x87
		}
		if c.connack == nil || c.connack.ReasonCode != want {
			t.Errorf("%s: CONNACK %+v, want reason 0x%02x", name, c.connack, want)
		}
	}
}

// MQTT over TLS; a plaintext client on the TLS listener gets nowhere.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "mqtt test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("server", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	env, addr := start(t, func(cfg *config.Config) {
		cfg.MQTT.TLS = &config.TLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile}
	})
	_ = env
	pem, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	nc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cl := paho.NewClient(paho.ClientConfig{Conn: nc})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cl.Connect(ctx, &paho.Connect{ClientID: "tls", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatalf("connect over TLS: %v", err)
	}
	if _, err := cl.Publish(ctx, &paho.Publish{Topic: "tls/x", QoS: 1, Payload: []byte("sealed")}); err != nil {
		t.Fatalf("publish over TLS: %v", err)
	}
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := paho.NewClient(paho.ClientConfig{Conn: raw}).Connect(ctx, &paho.Connect{ClientID: "plain", CleanStart: true}); err == nil {
		t.Fatal("a plaintext CONNECT on the TLS listener was accepted")
	}
}

// MQTT over WebSocket (subprotocol mqtt) reaches TCP subscribers.
func TestWebSocket(t *testing.T) {
	wsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wsAddr := wsLn.Addr().String()
	wsLn.Close()
	_, addr := start(t, func(cfg *config.Config) { cfg.MQTT.WebSocket = wsAddr })
	sub := connect5(t, addr, "tcp-sub", nil)
	sub.subscribe(t, paho.SubscribeOptions{Topic: "ws/#", QoS: 1})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wc, _, err := websocket.Dial(ctx, "ws://"+wsAddr+"/mqtt", &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
	if err != nil {
		t.Fatal(err)
	}
	nc := websocket.NetConn(context.Background(), wc, websocket.MessageBinary)
	defer nc.Close()
	cl := paho.NewClient(paho.ClientConfig{Conn: nc})
	if _, err := cl.Connect(ctx, &paho.Connect{ClientID: "ws", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatalf("connect over WebSocket: %v", err)
	}
	if _, err := cl.Publish(ctx, &paho.Publish{Topic: "ws/x", QoS: 1, Payload: []byte("framed")}); err != nil {
		t.Fatalf("publish over WebSocket: %v", err)
	}
	if p := sub.next(t); string(p.Payload) != "framed" {
		t.Fatalf("got %q", p.Payload)
	}
}

// ACLs apply to the Kafka topics MQTT reaches: a publish needs WRITE on
// its topic's Kafka topic, a subscription READ on every topic it reads.
func TestACLs(t *testing.T) {
	env := testenv.StartWith(t, []kfake.Opt{mqttTopics, kfake.SeedTopics(3, "sensors")}, withMQTT,
		withUser(t, "alice", "a", false), withUser(t, "bob", "b", false), func(cfg *config.Config) {
			cfg.MQTT.Routes = []config.MQTTRoute{{Filter: "sensors/#", Topic: "sensors"}}
			cfg.Security.ACLs = config.ACLs{Enabled: true, Rules: []config.ACLRule{
				{Principal: "User:alice", Resource: "topic", Name: "sensors", Operations: []string{"write"}},
				{Principal: "User:bob", Resource: "topic", Name: "sensors", Operations: []string{"read"}},
			}}
		})
	addr := brokerOf(t, env.Node).Addr().String()
	login := func(user, password string) func(*paho.Connect) {
		return func(c *paho.Connect) {
			c.Username, c.UsernameFlag, c.Password, c.PasswordFlag = user, true, []byte(password), true
		}
	}
	bob := connect5(t, addr, "bob", login("bob", "b"))
	alice := connect5(t, addr, "alice", login("alice", "a"))
	sa, _ := bob.Subscribe(t.Context(), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "sensors/#", QoS: 1}, {Topic: "other/#", QoS: 1}}})
	if sa == nil || len(sa.Reasons) != 2 || sa.Reasons[0] != 1 || sa.Reasons[1] != 0x87 {
		t.Fatalf("SUBACK reasons %x, want [01 87]", sa.Reasons)
	}
	if r, _ := bob.Publish(t.Context(), &paho.Publish{Topic: "sensors/1", QoS: 1, Payload: []byte("x")}); r == nil || r.ReasonCode != 0x87 {
		t.Fatalf("bob's publish answered %+v, want reason 0x87", r)
	}
	if r := alice.publish(t, &paho.Publish{Topic: "sensors/1", QoS: 1, Payload: []byte("ok")}); r.ReasonCode != 0 {
		t.Fatalf("alice's publish answered 0x%02x", r.ReasonCode)
	}
	if p := bob.next(t); string(p.Payload) != "ok" {
		t.Fatalf("bob got %q", p.Payload)
	}
	if recs := consume(t, env, "sensors", 1); string(recs[0].Value) != "ok" {
		t.Fatalf("the sensors topic holds %q", recs[0].Value)
	}
}

// mqtt.max_connections bounds the node's MQTT connections: the next is
// closed at once, and a place freed takes a new one.
func TestMaxConnections(t *testing.T) {
	_, addr := start(t, func(cfg *config.Config) { cfg.MQTT.MaxConnections = 2 })
	a := connect5(t, addr, "a", nil)
	connect5(t, addr, "b", nil)
	if _, err := dial5(t, addr, "c", nil); err == nil {
		t.Fatal("a third connection was served")
	}
	a.Disconnect(&paho.Disconnect{})
	a.nc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := dial5(t, addr, "d", nil); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection served after one closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// With client_auth required, a client certificate stands for a username:
// a client presenting one connects without a password (anonymous access
// off), its principal the certificate's subject (ACLs name it); one
// without is refused at the TLS handshake.
func TestClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "mqtt test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("server", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Client("device", pkix.Name{CommonName: "device-7"})
	if err != nil {
		t.Fatal(err)
	}
	env, addr := start(t, func(cfg *config.Config) {
		cfg.MQTT.TLS = &config.TLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, CAFile: ca.CAFile, ClientAuth: "required"}
		cfg.MQTT.AllowAnonymous = false
		cfg.Security.ACLs = config.ACLs{Enabled: true, Rules: []config.ACLRule{
			{Principal: "User:CN=device-7", Resource: "topic", Name: "mqtt-messages", Operations: []string{"write"}}}}
	})
	pem, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	pair, err := tls.LoadX509KeyPair(cli.CertFile, cli.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cl := paho.NewClient(paho.ClientConfig{Conn: nc})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cl.Connect(ctx, &paho.Connect{ClientID: "device-7", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatalf("connect with a client certificate: %v", err)
	}
	if r, err := cl.Publish(ctx, &paho.Publish{Topic: "dev/7", QoS: 1, Payload: []byte("by cert")}); err != nil || r.ReasonCode != 0 {
		t.Fatalf("publish as CN=device-7: %+v %v", r, err)
	}
	if recs := consume(t, env, "mqtt-messages", 1); string(recs[0].Value) != "by cert" {
		t.Fatalf("record %q", recs[0].Value)
	}
	bare, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err == nil {
		defer bare.Close()
		if _, err := paho.NewClient(paho.ClientConfig{Conn: bare}).Connect(ctx, &paho.Connect{ClientID: "nocert", CleanStart: true}); err == nil {
			t.Fatal("a client without a certificate connected")
		}
	}
}
