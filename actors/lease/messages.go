package lease

import (
	"fmt"
	"strings"
	"time"
)

// Kind is the actor kind lease actors are registered under.
const Kind = "lease"

// Identity names the lease actor of a name in a namespace: <name>/<id>.
// A namespace holds no '/'; an id may hold anything.
func Identity(name, id string) string { return name + "/" + id }

// ParseIdentity splits an identity made by Identity.
func ParseIdentity(identity string) (name, id string, err error) {
	i := strings.IndexByte(identity, '/')
	if i <= 0 || i == len(identity)-1 {
		return "", "", fmt.Errorf("lease identity %q: want <name>/<id>", identity)
	}
	return identity[:i], identity[i+1:], nil
}

// Timing. A holder renews every RenewInterval at most (DefaultRenew
// unless it asks for less); the actor drops a holder that has not renewed
// within DropAfter of its intervals. A new activation grants nothing for
// Grace after its node began owning the name, so that a holder that
// survived the move renews first and is adopted: Grace covers the longest
// drop window.
const (
	MaxRenewInterval = 2 * time.Second
	DropAfter        = 3
	Grace            = DropAfter * MaxRenewInterval
	// IdleAfter is how long an actor with no holder and no one waiting
	// lives before it stops (Config.IdleAfter), so that names once
	// leased cost nothing.
	IdleAfter = 30 * time.Second
	// DefaultRevokeTimeout is how long a holder told to give the lease up
	// has to release it, when the acquirer names no time.
	DefaultRevokeTimeout = 5 * time.Second
	// DefaultWait and MaxWait bound how long an AcquireRequest waits.
	DefaultWait = 10 * time.Second
	MaxWait     = time.Minute
)

// same says whether a and b are the same holder's process.
func same(a, b *Holder) bool {
	return a != nil && b != nil && a.Address == b.Address && a.Id == b.Id
}

// millis is ms as a duration, def when not positive, at most limit.
func millis(ms int32, def, limit time.Duration) time.Duration {
	if ms <= 0 {
		return def
	}
	return min(time.Duration(ms)*time.Millisecond, limit)
}
