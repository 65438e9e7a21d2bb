package group

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshka/meshka/cluster"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startMesh runs a mesh node that hosts group actors with cfg; remote
// turns actor remoting on, so messages can cross to and from other nodes.
func startMesh(t *testing.T, cfg Config, id int32, remote bool, join ...string) *cluster.Mesh {
	t.Helper()
	mc := cluster.Config{
		Gossip: cluster.GossipConfig{
			Self:             cluster.Member{Cluster: "group-test", NodeID: id, Kafka: "127.0.0.1:9092"},
			Bind:             "127.0.0.1:0",
			Join:             join,
			ProbeInterval:    100 * time.Millisecond,
			SuspicionTimeout: 500 * time.Millisecond,
			Logger:           quiet(),
		},
		Kinds:  map[string]*actor.Props{Kind: Props(cfg)},
		Logger: quiet(),
	}
	if remote {
		mc.Remote = "127.0.0.1:0"
	}
	m, err := cluster.Start(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// actorTester asks one group actor, group "g" of upstream "up", through a
// one-node mesh, as the Kafka edge does. With serialise, every message
// and answer goes through its protobuf encoding, as one that crosses nodes
// does (on its own node the mesh passes the pointer).
type actorTester struct {
	t         *testing.T
	ctx       context.Context
	mesh      *cluster.Mesh
	identity  string
	serialise bool
}

func startActor(t *testing.T, ctx context.Context, cfg Config, serialise bool) *actorTester {
	t.Helper()
	return &actorTester{t: t, ctx: ctx, mesh: startMesh(t, cfg, 0, false), identity: Identity("up", "g"), serialise: serialise}
}

// overTheWire is msg after the trip a message to another node takes: into
// an Any, marshalled, unmarshalled and out of the Any into a new message
// of the type the Any names.
func overTheWire(t *testing.T, msg proto.Message) proto.Message {
	t.Helper()
	in, err := anypb.New(msg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out anypb.Any
	if err := proto.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	back, err := out.UnmarshalNew()
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(msg, back) {
		t.Fatalf("%T changed over the wire: %v became %v", msg, msg, back)
	}
	return back
}

func (a *actorTester) ask(msg proto.Message) *cluster.Reply {
	a.t.Helper()
	if a.serialise {
		msg = overTheWire(a.t, msg)
	}
	r, err := a.mesh.Ask(Kind, a.identity, msg)
	if err != nil {
		a.t.Fatal(err)
	}
	return r
}

// pending is a Kafka request asked of the actor, its answer to come.
type pending struct {
	req   kmsg.Request
	reply *cluster.Reply
}

func (a *actorTester) askKafka(req kmsg.Request, msg proto.Message) *pending {
	a.t.Helper()
	return &pending{req: req, reply: a.ask(msg)}
}

// answer waits for the answer to r and checks it is an A.
func answer[A proto.Message](a *actorTester, r *cluster.Reply) A {
	a.t.Helper()
	defer r.Close()
	var want A
	select {
	case v := <-r.C():
		v, err := r.Result(v)
		if err != nil {
			a.t.Fatalf("asking for a %T: %v", want, err)
		}
		if a.serialise {
			v = overTheWire(a.t, v.(proto.Message))
		}
		got, ok := v.(A)
		if !ok {
			a.t.Fatalf("answer %T, want %T", v, want)
		}
		return got
	case <-a.ctx.Done():
		a.t.Fatalf("no %T", want)
		return want
	}
}

// kafkaAnswer waits for the answer to p, an A, and decodes the Kafka
// response it carries, an R, as the edge does.
func kafkaAnswer[A KafkaResponse, R kmsg.Response](a *actorTester, p *pending) R {
	a.t.Helper()
	resp := p.req.ResponseKind().(R)
	if err := DecodeResponse(resp, answer[A](a, p.reply)); err != nil {
		a.t.Fatal(err)
	}
	return resp
}

// describe asks for the group as DescribeGroups at version shows it.
func (a *actorTester) describe(version int16) kmsg.DescribeGroupsResponseGroup {
	a.t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = version
	resp := kafkaAnswer[*DescribeResponse, *kmsg.DescribeGroupsResponse](a, a.askKafka(req, &DescribeRequest{Version: int32(version)}))
	if len(resp.Groups) != 1 {
		a.t.Fatalf("DescribeGroups answered %d groups, want 1", len(resp.Groups))
	}
	return resp.Groups[0]
}

// stop stops the actor and waits until it has.
func (a *actorTester) stop() {
	a.t.Helper()
	pid, err := a.mesh.PID(Kind, a.identity)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.mesh.System().Root.StopFuture(pid).Wait(); err != nil {
		a.t.Fatal(err)
	}
}
