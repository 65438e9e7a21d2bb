package kafkawire

import (
	"fmt"
	"testing"
)

// Repeated failed authentications from one address wait longer each
// time, up to the cap; another address starts afresh; the table of
// addresses stays bounded.
func TestFailuresSlowOneAddress(t *testing.T) {
	var f failures
	var last = f.add("10.0.0.1:5000")
	if last != failureStep {
		t.Fatalf("first failure waits %s, want %s", last, failureStep)
	}
	for i := 0; i < 50; i++ {
		d := f.add(fmt.Sprintf("10.0.0.1:%d", 5001+i)) // the port does not matter
		if d < last {
			t.Fatalf("failure %d waits %s, less than the one before (%s)", i+2, d, last)
		}
		last = d
	}
	if last != failureMax {
		t.Fatalf("after 51 failures the wait is %s, want the cap %s", last, failureMax)
	}
	if d := f.add("10.0.0.2:1"); d != failureStep {
		t.Fatalf("another address waits %s, want %s", d, failureStep)
	}
	for i := 0; i < 2*failureAddrs; i++ {
		f.add(fmt.Sprintf("10.1.%d.%d:1", i/256, i%256))
	}
	if n := len(f.byIP); n > failureAddrs {
		t.Fatalf("%d addresses remembered, bound %d", n, failureAddrs)
	}
}
