package upstream

import "github.com/twmb/franz-go/pkg/kmsg"

// pinned caps the version kgo negotiates for a request. kgo picks the
// highest version the broker supports up to MaxVersion, so overriding
// MaxVersion pins the request.
type pinned struct {
	kmsg.Request
	max int16
}

func (p *pinned) MaxVersion() int16 { return p.max }

// pinnedAdmin keeps kgo routing an admin request to the controller.
type pinnedAdmin struct{ pinned }

func (*pinnedAdmin) IsAdminRequest() {}

var (
	_ kmsg.Request      = (*pinned)(nil)
	_ kmsg.AdminRequest = (*pinnedAdmin)(nil)
)
