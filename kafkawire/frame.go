package kafkawire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// minRequestSize is the smallest request header: key, version, correlation
// id and a null client id.
const minRequestSize = 10

// checkSize validates a request's 4-byte size prefix before anything is
// allocated for it. Bytes that are plainly another protocol get a message
// saying so, which is what an operator needs in the log.
func checkSize(prefix [4]byte, max int32) (int32, error) {
	if what := otherProtocol(prefix); what != "" {
		return 0, fmt.Errorf("not a Kafka request: the bytes look like %s", what)
	}
	size := int32(binary.BigEndian.Uint32(prefix[:]))
	switch {
	case size < 0:
		return 0, fmt.Errorf("negative request size %d", size)
	case size < minRequestSize:
		return 0, fmt.Errorf("request size %d is below the %d-byte header", size, minRequestSize)
	case size > max:
		return 0, fmt.Errorf("request size %d exceeds the limit of %d bytes (kafka.max_frame_bytes)", size, max)
	}
	return size, nil
}

func otherProtocol(p [4]byte) string {
	switch string(p[:]) {
	case "GET ", "POST", "PUT ", "HEAD", "DELE", "OPTI", "PATC", "CONN", "TRAC", "PRI ", "HTTP":
		return "HTTP (a web client on the Kafka port)"
	}
	if p[0] == 0x16 && p[1] == 0x03 {
		return "a TLS handshake (a TLS client on a plaintext listener)"
	}
	return ""
}

// header is a decoded request header; body follows it in the frame.
type header struct {
	key      int16
	version  int16
	corrID   int32
	clientID string
	body     []byte
}

var errTruncated = errors.New("request header is truncated")

// parseHeader reads the fixed part of a request header. The client id and
// tagged fields depend on flexibility, known only once the key's handler
// is found, so skipTags is applied by the caller.
func parseHeader(frame []byte) (header, error) {
	if len(frame) < minRequestSize {
		return header{}, errTruncated
	}
	h := header{
		key:     int16(binary.BigEndian.Uint16(frame[0:2])),
		version: int16(binary.BigEndian.Uint16(frame[2:4])),
		corrID:  int32(binary.BigEndian.Uint32(frame[4:8])),
	}
	n := int16(binary.BigEndian.Uint16(frame[8:10]))
	rest := frame[10:]
	if n > 0 {
		if int(n) > len(rest) {
			return header{}, errTruncated
		}
		h.clientID = string(rest[:n])
		rest = rest[n:]
	} else if n < -1 {
		return header{}, fmt.Errorf("client id length %d is invalid", n)
	}
	h.body = rest
	return h, nil
}

// skipTags drops a flexible header's tagged fields from the body, read by
// kmsg as every other part of a request is.
func skipTags(b []byte) ([]byte, error) {
	r := kbin.Reader{Src: b}
	kmsg.SkipTags(&r)
	if !r.Ok() {
		return nil, errTruncated
	}
	return r.Src, nil
}
