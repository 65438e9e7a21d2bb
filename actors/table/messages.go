package table

import (
	"errors"
	"fmt"
	"strings"

	"github.com/meshka/meshka/records"
)

// Kind is the actor kind table actors are registered under.
const Kind = "table"

// Identity names a table actor: <upstream>/<topic>.
func Identity(upstreamName, topic string) string {
	return upstreamName + "/" + topic
}

// ParseIdentity splits an identity made by Identity. Upstream names and
// topic names hold no '/'.
func ParseIdentity(id string) (upstreamName, topic string, err error) {
	i := strings.IndexByte(id, '/')
	if i <= 0 || i == len(id)-1 || strings.IndexByte(id[i+1:], '/') >= 0 {
		return "", "", fmt.Errorf("table identity %q: want <upstream>/<topic>", id)
	}
	return id[:i], id[i+1:], nil
}

// Bounds of the answers: a scan page holds at most MaxScanLimit entries
// and, past its first, at most MaxScanBytes of keys, values and headers,
// so a page crosses nodes as one message well under remoting's largest.
const (
	DefaultScanLimit = 100
	MaxScanLimit     = 10000
	MaxScanBytes     = 1 << 20
)

// The messages to a table actor are the protobuf ones of table.proto, so
// that they may cross nodes; on the asking node they are passed as they
// are. GetRequest, ScanRequest and WaitRequest are each answered with
// their response message.

// NewItem is the message form of e.
func NewItem(e Entry) *Item {
	out := &Item{Key: e.Key, Value: e.Value, Partition: e.Partition, Offset: e.Offset, TimestampMillis: e.Timestamp}
	if len(e.Headers) > 0 {
		out.Headers = make([]*Header, len(e.Headers))
		for i, h := range e.Headers {
			out.Headers[i] = &Header{Key: h.Key, Value: h.Value, Null: h.Value == nil}
		}
	}
	return out
}

// Entry is the entry an item carries. Protobuf does not tell an empty
// value from a missing one; an entry's value is never null, and a
// header's is null only when marked so.
func (e *Item) Entry() Entry {
	out := Entry{Key: e.GetKey(), Value: e.GetValue(), Partition: e.GetPartition(), Offset: e.GetOffset(), Timestamp: e.GetTimestampMillis()}
	if out.Key == nil {
		out.Key = []byte{}
	}
	if out.Value == nil {
		out.Value = []byte{}
	}
	if hs := e.GetHeaders(); len(hs) > 0 {
		out.Headers = make([]records.Header, len(hs))
		for i, h := range hs {
			v := h.GetValue()
			switch {
			case h.GetNull():
				v = nil
			case v == nil:
				v = []byte{}
			}
			out.Headers[i] = records.Header{Key: h.GetKey(), Value: v}
		}
	}
	return out
}

// Error is a table's answer that is not OK, as an error.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return "table: " + e.Code.String()
	}
	return e.Msg
}

// Retriable says whether asking again after a pause may succeed: the
// table was busy, moving, or not loaded in time.
func (e *Error) Retriable() bool {
	switch e.Code {
	case Code_BUSY, Code_MOVED, Code_TIMEOUT:
		return true
	}
	return false
}

// Is makes errors.Is(err, ErrMemory) hold for a MEMORY answer.
func (e *Error) Is(target error) bool {
	return target == ErrMemory && e.Code == Code_MEMORY
}

// ErrorOf is the error a response's code and text stand for (nil for OK).
func ErrorOf(code Code, msg string) error {
	if code == Code_OK {
		return nil
	}
	return &Error{Code: code, Msg: msg}
}

// codeOf is the code an error of the table stands for.
func codeOf(err error) Code {
	var te *Error
	switch {
	case err == nil:
		return Code_OK
	case errors.As(err, &te):
		return te.Code
	case errors.Is(err, ErrMemory):
		return Code_MEMORY
	}
	return Code_FAILED
}
