package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/actors/group"
	"github.com/meshka/meshka/cluster"
)

// groupWait bounds how long a connection waits for a group actor that is
// not waiting on a rebalance; past it the client is told to find the
// coordinator again.
const groupWait = 30 * time.Second

// groupIDs remembers the group ids this node's actors were asked about, for
// ListGroups. Bounded by the groups clients name; DeleteGroups forgets.
type groupIDs struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func (g *groupIDs) add(id string) {
	g.mu.Lock()
	if g.ids == nil {
		g.ids = make(map[string]struct{})
	}
	g.ids[id] = struct{}{}
	g.mu.Unlock()
}

func (g *groupIDs) lookup(id string) (struct{}, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v, ok := g.ids[id]
	return v, ok
}

func (g *groupIDs) remove(id string) {
	g.mu.Lock()
	delete(g.ids, id)
	g.mu.Unlock()
}

func (g *groupIDs) list() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, 0, len(g.ids))
	for id := range g.ids {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// coordinates reports whether this node owns the group in its view.
func (s *Server) coordinates(id string) bool {
	return s.deps.Mesh.Owns(group.Kind, group.Identity(s.deps.UpstreamName, id))
}

// askGroup sends msg to the group's actor on whichever node owns it,
// activating it there, and returns its reply to come; when msg cannot be
// sent, the Kafka error code to answer instead.
func (s *Server) askGroup(id string, msg proto.Message) (*cluster.Reply, int16) {
	s.groups.add(id)
	identity := group.Identity(s.deps.UpstreamName, id)
	if !s.deps.Mesh.Owns(group.Kind, identity) {
		// A Kafka client asks the coordinator Metadata names; one that
		// asks another node has stale metadata and is told so, never
		// forwarded, so it finds the coordinator again.
		return nil, kerr.NotCoordinator.Code
	}
	r, err := s.deps.Mesh.Ask(group.Kind, identity, msg)
	if err != nil {
		s.log.Warn("group actor unavailable", "group", id, "err", err)
		return nil, groupCode(err)
	}
	return r, 0
}

// groupCode is the Kafka error code for a group actor that did not
// answer: NOT_COORDINATOR when the owner in this node's view has none, or
// refused since it does not own the group in its own view (the client
// finds the coordinator again once the views agree), else
// COORDINATOR_NOT_AVAILABLE (the owner cannot be reached, the actor
// stopped before it answered, or it took too long).
func groupCode(err error) int16 {
	if errors.Is(err, cluster.ErrNotOwner) {
		return kerr.NotCoordinator.Code
	}
	return kerr.CoordinatorNotAvailable.Code
}

// awaitGroup waits for the answer to r, of type A, up to d or until the
// connection ends (then the error), and closes r. Without an answer,
// code is the Kafka error code that stands for it.
func awaitGroup[A proto.Message](c *conn, id string, r *cluster.Reply, d time.Duration) (answer A, code int16, err error) {
	defer r.Close()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case v := <-r.C():
		v, err := r.Result(v)
		if err != nil {
			c.s.log.Warn("group actor did not answer", "group", id, "err", err)
			return answer, groupCode(err), nil
		}
		a, ok := v.(A)
		if !ok {
			c.s.log.Error("group actor answered with the wrong message", "group", id, "answer", fmt.Sprintf("%T", v), "want", fmt.Sprintf("%T", answer))
			return answer, kerr.CoordinatorNotAvailable.Code, nil
		}
		return a, 0, nil
	case <-t.C:
		return answer, kerr.CoordinatorNotAvailable.Code, nil
	case <-c.ctx.Done():
		return answer, 0, c.ctx.Err()
	}
}

// groupCall sends msg, which carries req, to the group's actor now, on
// the read goroutine, so one connection's group requests reach the actor
// in the order they came, and returns the handler's finish: the Kafka
// response in the actor's answer (an A), waited for up to d. When the
// actor cannot be reached, or does not answer in time, refuse builds the
// response for the code that stands for the answer.
func groupCall[A group.KafkaResponse, R kmsg.Response](c *conn, req kmsg.Request, id string, msg proto.Message, d time.Duration, refuse func(code int16) R) func() (kmsg.Response, error) {
	// Joining, syncing, heartbeating and leaving all need READ on the
	// group; a refused member never reaches the actor.
	if !c.allowed(acl.Read, acl.Group, id) {
		return now(refuse(groupRefused), nil)
	}
	r, code := c.s.askGroup(id, msg)
	// The finish is not run when the connection fails first; the reply is
	// then closed with the connection.
	var unhook func() bool
	if r != nil {
		unhook = context.AfterFunc(c.ctx, r.Close)
	}
	return func() (kmsg.Response, error) {
		if r != nil {
			unhook()
			answer, askCode, err := awaitGroup[A](c, id, r, d)
			if err != nil {
				return nil, err
			}
			if code = askCode; code == 0 {
				resp := req.ResponseKind()
				err := group.DecodeResponse(resp, answer)
				if err == nil {
					return resp, nil
				}
				c.s.log.Error("group actor's answer does not decode", "group", id, "err", err)
				code = kerr.CoordinatorNotAvailable.Code
			}
		}
		return refuse(code), nil
	}
}

// ask sends msg to a group actor and waits up to d for its answer, an A;
// a code other than 0 means there is none.
func ask[A proto.Message](c *conn, id string, msg proto.Message, d time.Duration) (A, int16, error) {
	r, code := c.s.askGroup(id, msg)
	if code != 0 {
		var zero A
		return zero, code, nil
	}
	return awaitGroup[A](c, id, r, d)
}

// checkCommit asks the group whether a commit from this generation and
// member may be stored. A group id that is empty is INVALID_GROUP_ID.
func (c *conn) checkCommit(id string, generation int32, member string, instance *string, transactional bool) (int16, error) {
	if id == "" {
		return kerr.InvalidGroupID.Code, nil
	}
	msg := &group.CheckCommitRequest{Generation: generation, MemberId: member, InstanceId: instance, Transactional: transactional}
	answer, code, err := ask[*group.CheckCommitResponse](c, id, msg, groupWait)
	if code != 0 || err != nil {
		return code, err
	}
	return int16(answer.ErrorCode), nil
}

// splitHost is the host part of a remote address.
func splitHost(addr string) (string, string, error) { return net.SplitHostPort(addr) }
