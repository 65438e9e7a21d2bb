package remote

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/meshka/meshka/schema/validate"
)

func TestLRUBound(t *testing.T) {
	c := newLRU[int, string](3)
	for i := range 5 {
		c.put(i, "v")
	}
	if c.len() != 3 {
		t.Fatalf("len %d, want 3", c.len())
	}
	for _, gone := range []int{0, 1} {
		if _, ok := c.get(gone); ok {
			t.Errorf("%d still kept past the bound", gone)
		}
	}
	// 2 used last: 3 is now the least recently used and goes next.
	if _, ok := c.get(2); !ok {
		t.Fatal("2 not kept")
	}
	c.put(5, "v")
	if _, ok := c.get(3); ok {
		t.Error("3 kept, though least recently used")
	}
	for _, kept := range []int{2, 4, 5} {
		if _, ok := c.get(kept); !ok {
			t.Errorf("%d not kept", kept)
		}
	}
	c.put(5, "w") // replacing does not grow it
	if v, _ := c.get(5); v != "w" || c.len() != 3 {
		t.Errorf("after replacing: %q, len %d", v, c.len())
	}
	c.remove(5)
	if _, ok := c.get(5); ok || c.len() != 2 {
		t.Errorf("after remove: len %d", c.len())
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err         error
		unavailable bool
	}{
		{&sr.ResponseError{StatusCode: 404, ErrorCode: 40403, Message: "Schema 7 not found"}, false},
		{&sr.ResponseError{StatusCode: 422, ErrorCode: 42202, Message: "Invalid version"}, false},
		{&sr.ResponseError{StatusCode: 401, ErrorCode: 401, Message: "Unauthorized"}, true},
		{&sr.ResponseError{StatusCode: 403}, true},
		{&sr.ResponseError{StatusCode: 429}, true},
		{&sr.ResponseError{StatusCode: 500, ErrorCode: 50001, Message: "store down"}, true},
		{&sr.ResponseError{StatusCode: 503}, true},
		{fmt.Errorf("unable to GET: %w", context.DeadlineExceeded), true},
		{errors.New("connection refused"), true},
	} {
		got := classify(c.err)
		if validate.Unavailable(got) != c.unavailable {
			t.Errorf("classify(%v) = %v, unavailable %v, want %v", c.err, got, validate.Unavailable(got), c.unavailable)
		}
	}
	if classify(nil) != nil {
		t.Error("classify(nil) is not nil")
	}
}
