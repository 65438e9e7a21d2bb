package test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testenv"
)

// ApiVersions through meshka advertises only keys meshka handles, within
// upstream's ranges, never raising upstream's minimum.
func TestApiVersionsIntersection(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 30*time.Second)
	ask := func(seeds string) *kmsg.ApiVersionsResponse {
		var cl = env.Client(t)
		if seeds == "direct" {
			cl = env.DirectClient(t)
		}
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName, req.ClientSoftwareVersion = "meshka-test", "1"
		resp, err := cl.Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.ApiVersionsResponse)
	}
	up, mk := ask("direct"), ask("meshka")
	if mk.ErrorCode != 0 {
		t.Fatalf("ApiVersions error %d", mk.ErrorCode)
	}
	upRange := map[int16]kmsg.ApiVersionsResponseApiKey{}
	for _, k := range up.ApiKeys {
		upRange[k.ApiKey] = k
	}
	handled := map[int16]bool{0: true, 1: true, 2: true, 3: true, 8: true, 9: true, 10: true, 11: true,
		12: true, 13: true, 14: true, 15: true, 16: true, 18: true, 19: true, 20: true, 21: true, 22: true,
		23: true, 24: true, 25: true, 26: true, 28: true, 32: true, 33: true, 37: true, 42: true, 44: true,
		47: true, 60: true, 17: true, 36: true, 29: true, 30: true, 31: true}
	// SaslHandshake and SaslAuthenticate are between the client and
	// meshka, and the ACL keys answer from meshka's configuration:
	// advertised at meshka's own versions, whatever upstream's.
	self := map[int16]int16{17: 1, 36: 2, 29: 3, 30: 3, 31: 3}
	seen := map[int16]kmsg.ApiVersionsResponseApiKey{}
	for _, k := range mk.ApiKeys {
		seen[k.ApiKey] = k
		if !handled[k.ApiKey] {
			t.Errorf("meshka advertises %s (key %d), which it does not handle", kmsg.NameForKey(k.ApiKey), k.ApiKey)
		}
		if max, ok := self[k.ApiKey]; ok {
			if k.MinVersion != 0 || k.MaxVersion != max {
				t.Errorf("key %d: advertised %d-%d, want meshka's 0-%d", k.ApiKey, k.MinVersion, k.MaxVersion, max)
			}
			continue
		}
		u, ok := upRange[k.ApiKey]
		if !ok {
			t.Errorf("meshka advertises key %d, which upstream lacks", k.ApiKey)
			continue
		}
		if k.MinVersion != u.MinVersion && k.ApiKey != 1 && k.ApiKey != 0 {
			t.Errorf("key %d: min %d differs from upstream's %d", k.ApiKey, k.MinVersion, u.MinVersion)
		}
		if k.MinVersion > u.MinVersion && k.ApiKey == 0 {
			t.Errorf("Produce minimum raised to %d above upstream's %d", k.MinVersion, u.MinVersion)
		}
		if k.MaxVersion > u.MaxVersion {
			t.Errorf("key %d: max %d above upstream's %d", k.ApiKey, k.MaxVersion, u.MaxVersion)
		}
	}
	for key := range handled {
		if _, ok := seen[key]; !ok {
			t.Errorf("key %d (%s) is handled but not advertised", key, kmsg.NameForKey(key))
		}
	}
	if p := seen[0]; p.MinVersion != 3 || p.MaxVersion != 12 {
		t.Errorf("Produce advertised %d-%d, want 3-12 (upstream 3-13, meshka 3-12)", p.MinVersion, p.MaxVersion)
	}
}
