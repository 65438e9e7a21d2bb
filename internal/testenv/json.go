package testenv

import (
	"encoding/json"
	"reflect"
	"testing"
)

// SameJSON says whether two JSON documents hold the same value (object
// keys in any order, numbers by value); it fails the test on one that
// does not parse.
func SameJSON(tb testing.TB, a, b string) bool {
	tb.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		tb.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		tb.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}
