package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/relay"
	"github.com/meshka/meshka/internal/testcert"
	"github.com/meshka/meshka/tlsfiles"
)

// meshTLS is remoting's mutual TLS from files, as a node builds it.
func meshTLS(t *testing.T, pair testcert.Pair, caFile string) *RemoteTLS {
	t.Helper()
	c := config.TLS{CertFile: pair.CertFile, KeyFile: pair.KeyFile, CAFile: caFile, ClientAuth: "required"}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	server, err := tlsfiles.Server(c, quiet)
	if err != nil {
		t.Fatal(err)
	}
	c.ClientAuth = ""
	client, err := tlsfiles.Client(c, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return &RemoteTLS{Server: server, Client: client}
}

func newCA(t *testing.T, name string) *testcert.CA {
	t.Helper()
	ca, err := testcert.NewCA(t.TempDir(), name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func peer(t *testing.T, ca *testcert.CA, name string) testcert.Pair {
	t.Helper()
	p, err := ca.Peer(name, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type tlsMeshOpt func(*Config)

// remotingAt binds remoting at bind and gossips advertise for it.
func remotingAt(bind, advertise string) tlsMeshOpt {
	return func(c *Config) { c.Remote, c.AdvertiseRemote = bind, advertise }
}

func startTLSMesh(t *testing.T, id int32, join []string, rt *RemoteTLS, opts ...tlsMeshOpt) *Mesh {
	t.Helper()
	cfg := Config{
		Gossip:    gossipConfig(id, join),
		Remote:    "127.0.0.1:0",
		RemoteTLS: rt,
		Kinds:     map[string]*actor.Props{"answer": actor.PropsFromProducer(func() actor.Actor { return &answerer{node: id} })},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	m, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// ownedBy is an identity of kind answer that node id owns, in m's view.
func ownedBy(m *Mesh, id int32, prefix string) string {
	for i := 0; ; i++ {
		identity := fmt.Sprintf("%s-%d", prefix, i)
		if o, _ := m.Owner("answer", identity); o.NodeID == id {
			return identity
		}
	}
}

// ask requests identity from m and checks who answered.
func ask(t *testing.T, ctx context.Context, m *Mesh, identity string, owner int32) {
	t.Helper()
	v, err := m.Request(ctx, "answer", identity, wrapperspb.String(identity))
	if err != nil {
		t.Fatalf("%s from node %d: %v", identity, m.Members().Self().NodeID, err)
	}
	if got, want := v.(*wrapperspb.StringValue).Value, fmt.Sprintf("%d:%s", owner, identity); got != want {
		t.Fatalf("%s from node %d: answered %q, want %q", identity, m.Members().Self().NodeID, got, want)
	}
}

// Remoting under mutual TLS: requests from either node reach the owner's
// actor and come back. Node 1 is reached through a relay (it gossips the
// relay's address), which sees TLS from both ends of every connection and
// never the requests' text.
func TestRemotingOverMutualTLS(t *testing.T) {
	skipUnderRace(t)
	ca := newCA(t, "mesh")
	a := startTLSMesh(t, 0, nil, meshTLS(t, peer(t, ca, "node-0"), ca.CAFile))
	bind := freeAddr(t)
	r := relay.Start(t, bind)
	b := startTLSMesh(t, 1, []string{a.Members().Self().Gossip}, meshTLS(t, peer(t, ca, "node-1"), ca.CAFile),
		remotingAt(bind, r.Addr()))
	waitMembers(t, a.Members(), 0, 1)
	waitMembers(t, b.Members(), 0, 1)
	if m, _ := a.Members().View().ByID(1); m.Remote != r.Addr() {
		t.Fatalf("node 1 gossips remoting at %s, want the relay's %s", m.Remote, r.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const secret = "plaintext-that-must-not-cross"
	var sent []string
	for i := range 10 {
		onB, onA := ownedBy(a, 1, fmt.Sprintf("%s-%d", secret, i)), ownedBy(a, 0, fmt.Sprintf("%s-%d", secret, i))
		ask(t, ctx, a, onB, 1) // through the relay
		ask(t, ctx, b, onA, 0)
		sent = append(sent, onB)
	}
	toServer, toClient := r.Seen()
	if len(toServer) == 0 {
		t.Fatal("nothing crossed the relay")
	}
	for i := range toServer {
		if !relay.IsTLS(toServer[i]) || !relay.IsTLS(toClient[i]) {
			t.Fatalf("connection %d through the relay opens with % x from the dialler and % x from node 1, want TLS handshake records (16 03)",
				i, toServer[i][:min(8, len(toServer[i]))], toClient[i][:min(8, len(toClient[i]))])
		}
		for _, b := range [][]byte{toServer[i], toClient[i]} {
			if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte("answer")) {
				t.Fatalf("connection %d carried plaintext: a request's text or the kind's name", i)
			}
		}
	}
	var total int
	for i := range toServer {
		total += len(toServer[i])
	}
	if total < len(sent)*len(secret) {
		t.Fatalf("only %d bytes crossed the relay for %d requests", total, len(sent))
	}
}

// A node whose certificate another CA signed is a member by gossip, yet
// remoting refuses it both ways: its requests to the others' actors get
// no answer, nor theirs to its actors, and its certificate does not pass
// a handshake with a node's remoting.
func TestRemotingRefusesAnotherCA(t *testing.T) {
	skipUnderRace(t)
	ca, rogue := newCA(t, "mesh"), newCA(t, "rogue")
	a := startTLSMesh(t, 0, nil, meshTLS(t, peer(t, ca, "node-0"), ca.CAFile))
	c := startTLSMesh(t, 2, []string{a.Members().Self().Gossip}, meshTLS(t, peer(t, rogue, "node-2"), rogue.CAFile))
	waitMembers(t, a.Members(), 0, 2)
	waitMembers(t, c.Members(), 0, 2)
	for _, tc := range []struct {
		from  *Mesh
		owner int32
	}{{c, 0}, {a, 2}} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		identity := ownedBy(a, tc.owner, "refused")
		v, err := tc.from.Request(ctx, "answer", identity, wrapperspb.String(identity))
		cancel()
		if err == nil {
			t.Fatalf("node %d's actor answered node %d across CAs: %v", tc.owner, tc.from.Members().Self().NodeID, v)
		}
	}
	// The handshake itself: node 0's remoting refuses the rogue
	// certificate (with TLS 1.3 the client learns it on its first read).
	rogueTLS := meshTLS(t, peer(t, rogue, "probe"), ca.CAFile).Client
	conn, err := tls.Dial("tcp", a.Members().Self().Remote, rogueTLS)
	if err == nil {
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a certificate of another CA at node 0's remoting: %v, want a certificate error", err)
	}
	// And a dialler without a certificate at all.
	bare := &tls.Config{RootCAs: rogueTLS.RootCAs}
	conn, err = tls.Dial("tcp", a.Members().Self().Remote, bare)
	if err == nil {
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("no certificate at node 0's remoting: %v, want a certificate error", err)
	}
}

// Certificates renewed in their files take effect without a restart, on
// both remoting's server and its dialler: nodes 0 and 1 start with
// certificates of CA one, trusting CA one and CA two; their files are
// replaced by certificates of CA two; then node 2, which trusts CA two
// only, talks with both both ways, so each showed its new certificate
// serving and dialling.
func TestRemotingReloadsCertificates(t *testing.T) {
	skipUnderRace(t)
	one, two := newCA(t, "one"), newCA(t, "two")
	bundle := filepath.Join(t.TempDir(), "cas.pem")
	var both []byte
	for _, f := range []string{one.CAFile, two.CAFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		both = append(both, b...)
	}
	if err := os.WriteFile(bundle, both, 0o600); err != nil {
		t.Fatal(err)
	}
	pairs := []testcert.Pair{peer(t, one, "node-0"), peer(t, one, "node-1")}
	a := startTLSMesh(t, 0, nil, meshTLS(t, pairs[0], bundle))
	b := startTLSMesh(t, 1, []string{a.Members().Self().Gossip}, meshTLS(t, pairs[1], bundle))
	waitMembers(t, a.Members(), 0, 1)
	waitMembers(t, b.Members(), 0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ask(t, ctx, a, ownedBy(a, 1, "before"), 1)
	ask(t, ctx, b, ownedBy(a, 0, "before"), 0)

	for i, p := range pairs {
		renewed := peer(t, two, fmt.Sprintf("node-%d", i))
		// Key first, then certificate: a handshake between the two sees
		// a pair that does not load and keeps the old one.
		for _, mv := range [][2]string{{renewed.KeyFile, p.KeyFile}, {renewed.CertFile, p.CertFile}} {
			if err := os.Rename(mv[0], mv[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := startTLSMesh(t, 2, []string{a.Members().Self().Gossip}, meshTLS(t, peer(t, two, "node-2"), two.CAFile))
	for _, m := range []*Mesh{a, b, c} {
		waitMembers(t, m.Members(), 0, 1, 2)
	}
	// The first connections may come within a second of the files'
	// last check (tlsfiles looks at most once a second) and fail; the
	// requests are asked again until the new certificates are in use.
	for _, tc := range []struct {
		from  *Mesh
		owner int32
	}{{c, 0}, {c, 1}, {a, 2}, {b, 2}} {
		identity := ownedBy(a, tc.owner, fmt.Sprintf("after-%d", tc.from.Members().Self().NodeID))
		for {
			try, stop := context.WithTimeout(ctx, 3*time.Second)
			v, err := tc.from.Request(try, "answer", identity, wrapperspb.String(identity))
			stop()
			if err == nil {
				if got, want := v.(*wrapperspb.StringValue).Value, fmt.Sprintf("%d:%s", tc.owner, identity); got != want {
					t.Fatalf("answered %q, want %q", got, want)
				}
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("node %d to node %d after the renewal: %v", tc.from.Members().Self().NodeID, tc.owner, err)
			}
		}
	}
}
