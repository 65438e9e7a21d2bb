// Package wire reads and writes MQTT 3.1.1 and 5 control packets on a
// connection. The packets' own encoding and decoding are
// mochi-mqtt/server's packets package; the read loop is meshka's: the
// remaining length is checked against the bound before anything is
// allocated for the body, and a body is read whole before it is decoded,
// so a slow or hostile client holds at most one bounded packet.
package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Protocol versions, as CONNECT names them.
const (
	V311 byte = 4
	V5   byte = 5
)

// Error is why a packet was refused, with the MQTT reason code that says
// so (MQTT 5: in the CONNACK or DISCONNECT meshka sends before closing;
// MQTT 3.1.1 has no reason codes: the connection is just closed).
type Error struct {
	Code packets.Code
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("mqtt: %s (reason code 0x%02x)", e.Code.Reason, e.Code.Code)
	}
	return fmt.Sprintf("mqtt: %s (reason code 0x%02x): %v", e.Code.Reason, e.Code.Code, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func refuse(code packets.Code, err error) *Error { return &Error{Code: code, Err: err} }

// Reader reads packets from one connection; not safe for concurrent use.
// Between packets, when nothing it read is left unparsed, it waits for
// the next packet's first byte holding no buffer: an idle connection
// costs no read buffer, and a busy one borrows one from a pool while
// bytes are there.
type Reader struct {
	src     io.Reader
	r       *bufio.Reader // nil while idle
	first   [1]byte
	max     int
	version byte
}

// bufferSize is a read buffer's size: a few small packets at once.
const bufferSize = 4096

var buffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufferSize) }}

// NewReader reads from r packets of at most maxPacketSize bytes, fixed
// header included (mqtt.max_packet_size). Packets decode as MQTT 3.1.1
// until a CONNECT names another version (or SetVersion does).
func NewReader(r io.Reader, maxPacketSize int) *Reader {
	return &Reader{src: r, max: maxPacketSize, version: V311}
}

// headerByte reads a packet's first byte: from the buffer when it holds
// one; else, once the buffer has gone back to the pool, straight from
// the connection, taking a buffer for what follows.
func (r *Reader) headerByte() (byte, error) {
	if r.r != nil && r.r.Buffered() > 0 {
		return r.r.ReadByte()
	}
	if r.r != nil {
		r.r.Reset(nil)
		buffers.Put(r.r)
		r.r = nil
	}
	if _, err := io.ReadFull(r.src, r.first[:]); err != nil {
		return 0, err
	}
	r.r = buffers.Get().(*bufio.Reader)
	r.r.Reset(r.src)
	return r.first[0], nil
}

// SetVersion sets the protocol version the connection's CONNECT named.
func (r *Reader) SetVersion(v byte) { r.version = v }

// Version is the protocol version packets decode at.
func (r *Reader) Version() byte { return r.version }

// Read reads the next packet. io.EOF is a connection closed between
// packets; an *Error is a packet refused, after which the connection is
// to be closed (with its reason code, for MQTT 5).
func (r *Reader) Read() (packets.Packet, error) {
	pk, err := r.ReadPacket()
	return *pk, err
}

// ReadPacket is Read with the packet on the heap: a connection's read
// loop keeps no packet on its stack while it waits, so its stack stays
// small.
func (r *Reader) ReadPacket() (*packets.Packet, error) {
	pk := new(packets.Packet)
	hb, err := r.headerByte()
	if err != nil {
		return pk, err // io.EOF between packets
	}
	if err := pk.FixedHeader.Decode(hb); err != nil {
		return pk, refuse(codeOf(err, packets.ErrMalformedPacket), err)
	}
	remaining, lenBytes, err := readLength(r.r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return pk, io.ErrUnexpectedEOF
		}
		return pk, refuse(packets.ErrMalformedPacket, err)
	}
	if size := 1 + lenBytes + remaining; r.max > 0 && size > r.max {
		if pk.FixedHeader.Type == packets.Connect {
			r.peekVersion()
		}
		return pk, refuse(packets.ErrPacketTooLarge, fmt.Errorf("%d bytes, more than mqtt.max_packet_size (%d)", size, r.max))
	}
	pk.FixedHeader.Remaining = remaining
	body := make([]byte, remaining)
	if _, err := io.ReadFull(r.r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return pk, err
	}
	pk.ProtocolVersion = r.version
	if pk.FixedHeader.Type == packets.Connect {
		// A level we do not speak is refused as such before the rest,
		// whose layout is that level's, is decoded [MQTT-3.1.2-2].
		if v, ok := connectVersion(body); ok && v != V311 && v != V5 {
			return pk, refuse(packets.ErrUnsupportedProtocolVersion, fmt.Errorf("protocol version %d", v))
		}
	}
	if err := decode(pk, body); err != nil {
		return pk, refuse(codeOf(err, packets.ErrMalformedPacket), err)
	}
	if pk.FixedHeader.Type == packets.Connect {
		// The connection's version from here on is the one its
		// CONNECT names.
		r.version = pk.ProtocolVersion
	}
	return pk, nil
}

// readLength reads a remaining length, a variable byte integer of at most
// four bytes [MQTT-1.5.5-1]. (mochi's DecodeLength reads on for as long
// as the value stays in range, so it takes a fifth byte, and a run of
// 0x80 bytes never ends.)
func readLength(r io.ByteReader) (n, size int, err error) {
	for size < 4 {
		b, err := r.ReadByte()
		if err != nil {
			return 0, size, err
		}
		n |= int(b&0x7f) << (7 * size)
		size++
		if b&0x80 == 0 {
			return n, size, nil
		}
	}
	return 0, size, packets.ErrMalformedVariableByteInteger
}

// peekVersion takes the version of a CONNECT too large to read from the
// start of its body, so that an MQTT 5 client is told why in a CONNACK
// it can read.
func (r *Reader) peekVersion() {
	b, _ := r.r.Peek(7)
	if v, ok := connectVersion(b); ok && v == V5 {
		r.version = V5
	}
}

// connectVersion is the protocol level a CONNECT's body names after the
// protocol name MQTT; false: the body starts otherwise.
func connectVersion(body []byte) (byte, bool) {
	if len(body) < 7 || string(body[:6]) != "\x00\x04MQTT" {
		return 0, false
	}
	return body[6], true
}

// decode reads the body of pk, whose fixed header is read.
func decode(pk *packets.Packet, body []byte) (err error) {
	// The codecs index their input unchecked in places (an MQTT 5
	// SUBSCRIBE ending after a filter, without its options byte, reads
	// past the body): a body they cannot read is a malformed packet,
	// never a panic of the connection.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", packets.ErrMalformedPacket, r)
		}
	}()
	switch pk.FixedHeader.Type {
	case packets.Connect:
		return pk.ConnectDecode(body)
	case packets.Connack:
		return pk.ConnackDecode(body)
	case packets.Publish:
		return pk.PublishDecode(body)
	case packets.Puback:
		return pk.PubackDecode(body)
	case packets.Pubrec:
		return pk.PubrecDecode(body)
	case packets.Pubrel:
		return pk.PubrelDecode(body)
	case packets.Pubcomp:
		return pk.PubcompDecode(body)
	case packets.Subscribe:
		return pk.SubscribeDecode(body)
	case packets.Suback:
		return pk.SubackDecode(body)
	case packets.Unsubscribe:
		return pk.UnsubscribeDecode(body)
	case packets.Unsuback:
		return pk.UnsubackDecode(body)
	case packets.Pingreq:
		return pk.PingreqDecode(body)
	case packets.Pingresp:
		return pk.PingrespDecode(body)
	case packets.Disconnect:
		return pk.DisconnectDecode(body)
	case packets.Auth:
		if pk.ProtocolVersion != V5 {
			return packets.ErrProtocolViolation // AUTH is MQTT 5's
		}
		return pk.AuthDecode(body)
	}
	return packets.ErrProtocolViolation // type 0 is reserved
}

// codeOf is the reason code err carries, or def when it carries none.
func codeOf(err error, def packets.Code) packets.Code {
	var c packets.Code
	if errors.As(err, &c) {
		return c
	}
	return def
}

// Encode appends pk, at its ProtocolVersion, to buf.
func Encode(buf *bytes.Buffer, pk *packets.Packet) error {
	switch pk.FixedHeader.Type {
	case packets.Connect:
		return pk.ConnectEncode(buf)
	case packets.Connack:
		return pk.ConnackEncode(buf)
	case packets.Publish:
		return pk.PublishEncode(buf)
	case packets.Puback:
		return pk.PubackEncode(buf)
	case packets.Pubrec:
		return pk.PubrecEncode(buf)
	case packets.Pubrel:
		return pk.PubrelEncode(buf)
	case packets.Pubcomp:
		return pk.PubcompEncode(buf)
	case packets.Subscribe:
		return pk.SubscribeEncode(buf)
	case packets.Suback:
		return pk.SubackEncode(buf)
	case packets.Unsubscribe:
		return pk.UnsubscribeEncode(buf)
	case packets.Unsuback:
		return pk.UnsubackEncode(buf)
	case packets.Pingreq:
		return pk.PingreqEncode(buf)
	case packets.Pingresp:
		return pk.PingrespEncode(buf)
	case packets.Disconnect:
		return pk.DisconnectEncode(buf)
	case packets.Auth:
		return pk.AuthEncode(buf)
	}
	return fmt.Errorf("mqtt: no packet type %d", pk.FixedHeader.Type)
}
