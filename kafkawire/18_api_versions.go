package kafkawire

// ApiVersions, key 18.
//
// v0-v4. meshka advertises, for each key it handles, the intersection of
// its own range and upstream's, and nothing upstream lacks. Minimum versions
// are never raised above upstream's: librdkafka quietly stops compressing
// when it sees Produce's minimum rise. A version meshka does not know gets
// the v0 answer with UNSUPPORTED_VERSION (see parseRequest), from which the
// client retries lower. Upstream's supported and finalized features are
// passed on so clients choose the same protocol variants they would direct.

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const apiVersionsKey = 18

func init() { register(apiVersionsKey, 0, 4, handleApiVersions) }

func handleApiVersions(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.ApiVersionsRequest)
	return func() (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		if req.Version >= 3 && (!validSoftware(req.ClientSoftwareName) || !validSoftware(req.ClientSoftwareVersion)) {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp, nil
		}
		up := c.s.upstreamVersions(c)
		if up == nil {
			// Upstream cannot be asked now. Answering from meshka's own
			// ranges keeps the client talking: its next request,
			// Metadata, then says the cluster is unavailable, where a
			// closed connection makes librdkafka blame its own
			// security.protocol or a broker older than 0.10. The first
			// request at a version upstream turns out to lack closes
			// the connection, and the client's new ApiVersions gets the
			// intersection.
			resp.ApiKeys = advertised(func(key int16) (int16, int16, bool) { return apis[key].min, apis[key].max, true })
			return resp, nil
		}
		upRange := make(map[int16]kmsg.ApiVersionsResponseApiKey, len(up.ApiKeys))
		for _, k := range up.ApiKeys {
			upRange[k.ApiKey] = k
		}
		resp.ApiKeys = advertised(func(key int16) (int16, int16, bool) {
			if selfAnswered(key) {
				return apis[key].min, apis[key].max, true // answered by meshka itself
			}
			k, ok := upRange[key]
			return k.MinVersion, k.MaxVersion, ok
		})
		resp.SupportedFeatures = up.SupportedFeatures
		resp.FinalizedFeaturesEpoch = up.FinalizedFeaturesEpoch
		resp.FinalizedFeatures = up.FinalizedFeatures
		resp.ZkMigrationReady = false
		return resp, nil
	}
}

// advertised intersects meshka's handled ranges with upstream's.
func advertised(upstream func(key int16) (min, max int16, ok bool)) []kmsg.ApiVersionsResponseApiKey {
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for key, a := range apis {
		upMin, upMax, ok := upstream(key)
		if !ok {
			continue
		}
		lo, hi := max(a.min, upMin), min(a.max, upMax)
		if lo > hi {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = key, lo, hi
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ApiKey < out[j].ApiKey })
	return out
}

// How long a client's ApiVersions or Metadata waits for an upstream that
// has not answered yet before meshka answers without it; shorter once
// upstream is known to be unreachable. Both stay well inside clients'
// request timeouts (librdkafka's ApiVersions timeout is 10 s).
const (
	upstreamWait     = 3 * time.Second
	upstreamDownWait = 250 * time.Millisecond
)

// upstreamWaitCtx bounds a wait on upstream for a client's request; done
// tells upstream's health when the bound, not the client, ended the wait.
func (s *Server) upstreamWaitCtx(client context.Context) (ctx context.Context, done func()) {
	d := upstreamWait
	if s.deps.Upstream.Unreachable() != nil {
		d = upstreamDownWait
	}
	ctx, cancel := context.WithTimeout(client, d)
	return ctx, func() {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && client.Err() == nil {
			s.deps.Upstream.NoteSilence(d)
		}
		cancel()
	}
}

// upstreamVersions is upstream's ApiVersions answer, or nil when upstream
// cannot give it within upstreamWait; the cause is logged once per
// interval, not once per connection.
func (s *Server) upstreamVersions(c *conn) *kmsg.ApiVersionsResponse {
	if up := s.deps.Upstream.CachedApiVersions(); up != nil {
		return up
	}
	ctx, done := s.upstreamWaitCtx(c.ctx)
	up, err := s.deps.Upstream.ApiVersions(ctx)
	done()
	if err != nil && c.ctx.Err() == nil {
		s.upstreamTrouble("ApiVersions", err)
	}
	return up
}

// versionRange is upstream's version range for key in its ApiVersions
// answer up; not ok when up is nil (not asked yet) or lacks key.
func versionRange(up *kmsg.ApiVersionsResponse, key int16) (lo, hi int16, ok bool) {
	if up == nil {
		return 0, 0, false
	}
	for _, k := range up.ApiKeys {
		if k.ApiKey == key {
			return k.MinVersion, k.MaxVersion, true
		}
	}
	return 0, 0, false
}

// apiVersionsFallback is the v0 answer to an ApiVersions version meshka does
// not know: the error and the ApiVersions range, so the client retries.
func apiVersionsFallback() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = apiVersionsKey, apis[apiVersionsKey].min, apis[apiVersionsKey].max
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{k}
	return resp
}

// validSoftware is Kafka's rule for client software names and versions.
func validSoftware(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || i == len(s)-1 || (c != '.' && c != '-')) {
			return false
		}
	}
	return true
}
