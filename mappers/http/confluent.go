package httpmap

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/mesh"
)

// The Confluent REST Proxy's API (http.confluent): v3 under /v3 in
// confluent_v3.go, v2 produce and topics in confluent_v2.go. Its error
// codes are HTTP statuses, or a status and two more digits (40403: 404,
// an unknown topic or partition from Kafka).
const (
	codeTopicNotFound     = 40401
	codePartitionNotFound = 40402
	codeUnknownTopicPart  = 40403
	codeKafkaBadRequest   = 40002
	codeAuthentication    = 40101
	codeAuthorization     = 40301
	codeKafkaError        = 50002
	codeKafkaRetriable    = 50003
	codePayload           = 42206
)

// confluentError is an error as the REST Proxy answers it, in v2 and v3
// alike.
type confluentError struct {
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

// status is the HTTP status of the error's code: its first three digits.
func (e *confluentError) status() int {
	c := e.Code
	for c >= 1000 {
		c /= 10
	}
	if c < 100 || c > 599 {
		return http.StatusInternalServerError
	}
	return c
}

func errorf(code int, format string, args ...any) *confluentError {
	return &confluentError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// produceError is a producer's error as the REST Proxy reports it.
func produceError(topic string, err error) *confluentError {
	var ke *kerr.Error
	switch {
	case errors.Is(err, mesh.ErrClosed):
		return errorf(http.StatusServiceUnavailable, "meshka is stopping: %v", err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return errorf(codeKafkaRetriable, "topic %s: %v", topic, err)
	case !errors.As(err, &ke):
		return errorf(codeKafkaError, "Kafka error: %v", err)
	}
	switch ke {
	case kerr.UnknownTopicOrPartition:
		return errorf(codeUnknownTopicPart, "%s (topic %s)", ke.Description, topic)
	case kerr.MessageTooLarge, kerr.RecordListTooLarge:
		return errorf(http.StatusRequestEntityTooLarge, "topic %s: %v", topic, err)
	case kerr.InvalidRecord, kerr.PolicyViolation, kerr.InvalidTimestamp, kerr.CorruptMessage, kerr.InvalidTopicException:
		return errorf(codeKafkaBadRequest, "topic %s: %v", topic, err)
	case kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed, kerr.TransactionalIDAuthorizationFailed:
		return errorf(codeAuthorization, "topic %s: %v", topic, err)
	case kerr.SaslAuthenticationFailed:
		return errorf(codeAuthentication, "topic %s: %v", topic, err)
	}
	if ke.Retriable {
		return errorf(codeKafkaRetriable, "topic %s: %v", topic, err)
	}
	return errorf(codeKafkaError, "Kafka error: %v", err)
}

// upstreamError is an error of a metadata lookup for topic ("" for the
// cluster's).
func upstreamError(topic string, err error) *confluentError {
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return errorf(http.StatusNotFound, "Topic %s cannot be found.", topic)
	}
	if topic == "" {
		return errorf(http.StatusServiceUnavailable, "upstream: %v", err)
	}
	return errorf(http.StatusServiceUnavailable, "topic %s: upstream: %v", topic, err)
}

// writeConfluent answers v with its status, in the API's content type.
func writeConfluent(w http.ResponseWriter, contentType string, status int, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// confluentRoutes registers a path's methods on mux, and the path alone
// for the other methods, answered 405 with Allow in the API's shape.
func confluentRoutes(mux *http.ServeMux, contentType, path string, methods map[string]http.HandlerFunc) {
	var allow []string
	for m, h := range methods {
		mux.HandleFunc(m+" "+path, h)
		allow = append(allow, m)
		if m == http.MethodGet {
			allow = append(allow, http.MethodHead)
		}
	}
	slices.Sort(allow)
	allowed := strings.Join(allow, ", ")
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allowed)
		writeConfluent(w, contentType, http.StatusMethodNotAllowed,
			errorf(http.StatusMethodNotAllowed, "HTTP 405 Method Not Allowed: %s is not served on %s; allowed: %s", r.Method, r.URL.Path, allowed))
	})
}

// newConfluent is the Confluent API's handler: v3 and v2 together, with
// their own 404 below /v3/ and 501 for v2 consumer instances.
func (s *Server) newConfluent() *http.ServeMux {
	mux := http.NewServeMux()
	s.v3Routes(mux)
	s.v2Routes(mux)
	return mux
}

// confluentBase is the scheme and authority the API's links start with:
// http.advertise, else the request's Host.
func (s *Server) confluentBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := s.cfg.Advertise
	if host == "" {
		host = r.Host
	}
	return scheme + "://" + host
}

// decodeBase64 takes standard base64, padded or not, as the REST Proxy
// does.
func decodeBase64(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") || len(s)%4 == 0 {
		return base64.StdEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// brief is a JSON value for an error message, cut short when long.
func brief(raw []byte) string {
	const max = 64
	if len(raw) > max {
		return string(raw[:max]) + "…"
	}
	return string(raw)
}
