package kafkawire

import (
	"net"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/actors/group"
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

// sendGroup delivers msg to the group's actor, activating it. It reports a
// Kafka error code when the actor cannot be reached.
func (s *Server) sendGroup(id string, msg any) int16 {
	s.groups.add(id)
	if err := s.deps.Mesh.Send(group.Kind, group.Identity(s.deps.UpstreamName, id), msg); err != nil {
		s.log.Warn("group actor unavailable", "group", id, "err", err)
		return kerr.CoordinatorNotAvailable.Code
	}
	return 0
}

// await waits for an actor's reply, the connection's end, or d.
func await[T any](c *conn, ch <-chan T, d time.Duration) (v T, ok bool, err error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case v = <-ch:
		return v, true, nil
	case <-t.C:
		return v, false, nil
	case <-c.ctx.Done():
		return v, false, c.ctx.Err()
	}
}

// groupCall sends msg to the group's actor now, on the read goroutine, so
// one connection's group requests reach the actor in the order they came,
// and returns the handler's finish: the actor's reply on ch, waited for up
// to d. When the actor cannot be reached, or does not reply in time
// (COORDINATOR_NOT_AVAILABLE), refuse builds the answer for that code.
func groupCall[R kmsg.Response](c *conn, id string, msg any, ch <-chan R, d time.Duration, refuse func(code int16) R) func() (kmsg.Response, error) {
	code := c.s.sendGroup(id, msg)
	return func() (kmsg.Response, error) {
		if code == 0 {
			resp, ok, err := await(c, ch, d)
			switch {
			case err != nil:
				return nil, err
			case ok:
				return resp, nil
			}
			code = kerr.CoordinatorNotAvailable.Code
		}
		return refuse(code), nil
	}
}

// ask sends msg to a group actor and waits for the reply on ch; a code other
// than 0 means there is no reply.
func ask[T any](c *conn, id string, msg any, ch <-chan T, d time.Duration) (T, int16, error) {
	var zero T
	if code := c.s.sendGroup(id, msg); code != 0 {
		return zero, code, nil
	}
	v, ok, err := await(c, ch, d)
	if err != nil {
		return zero, 0, err
	}
	if !ok {
		return zero, kerr.CoordinatorNotAvailable.Code, nil
	}
	return v, 0, nil
}

// checkCommit asks the group whether a commit from this generation and
// member may be stored. A group id that is empty is INVALID_GROUP_ID.
func (c *conn) checkCommit(id string, generation int32, member string, instance *string, transactional bool) (int16, error) {
	if id == "" {
		return kerr.InvalidGroupID.Code, nil
	}
	ch := make(chan int16, 1)
	code, askCode, err := ask(c, id, &group.CheckCommit{Generation: generation, MemberID: member, InstanceID: instance, Transactional: transactional, Reply: ch}, ch, groupWait)
	if askCode != 0 {
		return askCode, err
	}
	return code, err
}

// splitHost is the host part of a remote address.
func splitHost(addr string) (string, string, error) { return net.SplitHostPort(addr) }
