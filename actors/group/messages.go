package group

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"
)

// Kind is the actor kind group actors are registered under.
const Kind = "group"

// Identity names a group actor: <upstream>/<group id>.
func Identity(upstreamName, groupID string) string {
	return upstreamName + "/" + groupID
}

// ParseIdentity splits an identity made by Identity. Upstream names hold no
// '/', group ids may, so only the first separator counts.
func ParseIdentity(id string) (upstreamName, groupID string, err error) {
	i := strings.IndexByte(id, '/')
	if i <= 0 {
		return "", "", fmt.Errorf("group identity %q: want <upstream>/<group>", id)
	}
	return id[:i], id[i+1:], nil
}

// The messages to a group actor are the protobuf ones of group.proto, so
// that they may cross nodes; on the asking node they are passed as they
// are. Each is answered with its response message, sent to the request's
// sender: at once, or, for a JoinRequest and a SyncRequest, when the
// rebalance or the leader's assignment comes. The edge builds them with
// the constructors here and reads the Kafka responses back with
// DecodeResponse.

// NewJoin wraps a client's JoinGroup request for the group's actor.
func NewJoin(req *kmsg.JoinGroupRequest, clientID, clientHost string) *JoinRequest {
	return &JoinRequest{Version: int32(req.Version), Request: req.AppendTo(nil), ClientId: clientID, ClientHost: clientHost}
}

// NewSync wraps a client's SyncGroup request for the group's actor.
func NewSync(req *kmsg.SyncGroupRequest) *SyncRequest {
	return &SyncRequest{Version: int32(req.Version), Request: req.AppendTo(nil)}
}

// NewHeartbeat wraps a client's Heartbeat request for the group's actor.
func NewHeartbeat(req *kmsg.HeartbeatRequest) *HeartbeatRequest {
	return &HeartbeatRequest{Version: int32(req.Version), Request: req.AppendTo(nil)}
}

// NewLeave wraps a client's LeaveGroup request for the group's actor.
func NewLeave(req *kmsg.LeaveGroupRequest) *LeaveRequest {
	return &LeaveRequest{Version: int32(req.Version), Request: req.AppendTo(nil)}
}

// KafkaResponse is an answer of a group actor that carries a Kafka
// response: JoinResponse, SyncResponse, HeartbeatResponse, LeaveResponse
// and DescribeResponse.
type KafkaResponse interface {
	proto.Message
	GetResponse() []byte
}

// DecodeResponse reads the Kafka response an answer carries into resp,
// which must be new and at the version of the request it answers (as the
// request's ResponseKind is).
func DecodeResponse(resp kmsg.Response, from KafkaResponse) error {
	if err := resp.ReadFrom(from.GetResponse()); err != nil {
		return fmt.Errorf("group answer: decoding %s v%d: %w", kmsg.NameForKey(resp.Key()), resp.GetVersion(), err)
	}
	return nil
}

// GroupSummary is one ListGroups entry. State "Dead" means the group does
// not exist on this node.
type GroupSummary struct {
	Group, State, ProtocolType string
}

// tick tells the actor its group's next deadline may have passed. It
// never leaves the node: the actor's own timer sends it.
type tick struct{ seq uint64 }

// kafkaRequest decodes the Kafka request that msg carries, as the group
// takes it: a *kmsg.JoinGroupRequest, SyncGroupRequest, HeartbeatRequest
// or LeaveGroupRequest, or, for a DescribeRequest, a
// *kmsg.DescribeGroupsRequest that only gives its version (the actor
// describes its own group). It is nil for a message that carries none.
// When the bytes do not decode, the request returned is an empty one at a
// version kmsg knows, to build the error answer from.
func kafkaRequest(msg any) (kmsg.Request, error) {
	switch m := msg.(type) {
	case *JoinRequest:
		return decodeKafka[kmsg.JoinGroupRequest](m.Version, m.Request)
	case *SyncRequest:
		return decodeKafka[kmsg.SyncGroupRequest](m.Version, m.Request)
	case *HeartbeatRequest:
		return decodeKafka[kmsg.HeartbeatRequest](m.Version, m.Request)
	case *LeaveRequest:
		return decodeKafka[kmsg.LeaveGroupRequest](m.Version, m.Request)
	case *DescribeRequest:
		return newAt[kmsg.DescribeGroupsRequest](m.Version)
	}
	return nil, nil
}

// kafkaMessage is a kmsg request type, as a pointer.
type kafkaMessage[T any] interface {
	*T
	kmsg.Request
	Default()
}

// decodeKafka reads b, a request body of T's key at version.
func decodeKafka[T any, P kafkaMessage[T]](version int32, b []byte) (kmsg.Request, error) {
	req, err := newAt[T, P](version)
	if err != nil {
		return req, err
	}
	if err := req.ReadFrom(b); err != nil {
		// What was read before the bytes ran out is not the client's.
		empty, _ := newAt[T, P](version)
		return empty, fmt.Errorf("group request: decoding %s v%d: %w", kmsg.NameForKey(req.Key()), version, err)
	}
	return req, nil
}

// newAt is a new request of T's key at version. A version outside kmsg's
// range for the key is refused, not guessed at, since the encoding
// depends on it; the request is then at the nearest version kmsg knows.
func newAt[T any, P kafkaMessage[T]](version int32) (P, error) {
	req := P(new(T))
	req.Default()
	top := req.MaxVersion()
	switch {
	case version < 0:
		req.SetVersion(0)
	case version > int32(top):
		req.SetVersion(top)
	default:
		req.SetVersion(int16(version))
		return req, nil
	}
	return req, fmt.Errorf("group request: %s version %d, want 0 to %d", kmsg.NameForKey(req.Key()), version, top)
}

// errorResponse answers req, as kafkaRequest decoded it, with code and
// nothing else.
func errorResponse(req kmsg.Request, code int16) kmsg.Response {
	switch req := req.(type) {
	case *kmsg.JoinGroupRequest:
		return joinError(req, code, req.MemberID)
	case *kmsg.SyncGroupRequest:
		return syncError(req, code)
	case *kmsg.HeartbeatRequest:
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.LeaveGroupRequest:
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.DescribeGroupsRequest:
		d := kmsg.NewDescribeGroupsResponseGroup()
		d.ErrorCode = code
		return describeResponse(req, d)
	}
	return nil
}

// describeResponse is the DescribeGroups response, at req's version, that
// describes one group.
func describeResponse(req *kmsg.DescribeGroupsRequest, d kmsg.DescribeGroupsResponseGroup) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.Groups = []kmsg.DescribeGroupsResponseGroup{d}
	return resp
}

// answerOf wraps a Kafka response the group decided in the message that
// carries it back; nil for a response no group message answers with.
func answerOf(resp kmsg.Response) proto.Message {
	switch resp.(type) {
	case *kmsg.JoinGroupResponse:
		return &JoinResponse{Response: resp.AppendTo(nil)}
	case *kmsg.SyncGroupResponse:
		return &SyncResponse{Response: resp.AppendTo(nil)}
	case *kmsg.HeartbeatResponse:
		return &HeartbeatResponse{Response: resp.AppendTo(nil)}
	case *kmsg.LeaveGroupResponse:
		return &LeaveResponse{Response: resp.AppendTo(nil)}
	case *kmsg.DescribeGroupsResponse:
		return &DescribeResponse{Response: resp.AppendTo(nil)}
	}
	return nil
}
