package registry

import (
	"errors"
	"testing"

	"github.com/meshka/meshka/schema"
)

// do plans op, applies its records and returns its result.
func do(t *testing.T, s *State, op Op) Result {
	t.Helper()
	recs, res, err := s.Plan(op)
	if err != nil {
		t.Fatalf("%T%+v: %v", op, op, err)
	}
	apply(t, s, recs)
	return res
}

func apply(t *testing.T, s *State, recs []Record) {
	t.Helper()
	for _, r := range recs {
		if err := s.Apply(r); err != nil {
			t.Fatalf("Apply(%s, %s): %v", r.Key, r.Value, err)
		}
	}
}

// code is the registry error code of err, 0 for nil, -1 for another error.
func code(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return -1
}

func fails(t *testing.T, s *State, op Op, want int) *Error {
	t.Helper()
	recs, _, err := s.Plan(op)
	if code(err) != want {
		t.Fatalf("%T%+v: err %v, want code %d", op, op, err, want)
	}
	if recs != nil {
		t.Fatalf("%T: records with an error", op)
	}
	return err.(*Error)
}

func avro(text string) Schema { return Schema{Schema: text} }

func jsonSchema(text string) Schema { return Schema{Type: schema.JSON, Schema: text} }

func proto(text string) Schema { return Schema{Type: schema.Protobuf, Schema: text} }

const (
	userV1 = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}`
	userV2 = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":0}]}`
	// userBad cannot read userV1's data: age has no default.
	userBad = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"}]}`
)
