package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// mqttClient is the bench's own MQTT 3.1.1 client: packets are encoded
// with mochi-mqtt's packets package and read with a parser of a few
// lines, and there is no goroutine of its own, so a thousand of them cost
// the measuring process little more than their sockets. The same client
// runs against meshka and mosquitto.
type mqttClient struct {
	nc  net.Conn
	r   *bufio.Reader
	buf []byte // the last packet's body, reused
}

// mqttMaxBody bounds a packet body the client reads; the bench's packets
// are a few hundred bytes.
const mqttMaxBody = 1 << 20

// dialMQTT connects and sends CONNECT (clean session, no will) with the
// given keep alive in seconds, and checks the CONNACK.
func dialMQTT(addr, clientID string, keepAlive uint16) (*mqttClient, error) {
	return dialMQTTSession(addr, clientID, keepAlive, true)
}

// dialMQTTSession is dialMQTT with clean session as given: false keeps
// the session past the connection.
func dialMQTTSession(addr, clientID string, keepAlive uint16, clean bool) (*mqttClient, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &mqttClient{nc: nc, r: bufio.NewReaderSize(nc, 16<<10)}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: clientID, Keepalive: keepAlive, Clean: clean}}
	var b bytes.Buffer
	if err := pk.ConnectEncode(&b); err != nil {
		nc.Close()
		return nil, err
	}
	if _, err := nc.Write(b.Bytes()); err != nil {
		nc.Close()
		return nil, err
	}
	typ, _, body, err := c.read()
	switch {
	case err != nil:
		err = fmt.Errorf("CONNACK: %w", err)
	case typ != packets.Connack || len(body) != 2:
		err = fmt.Errorf("CONNACK: got packet type %d of %d bytes", typ, len(body))
	case body[1] != 0:
		err = fmt.Errorf("CONNACK: return code %d", body[1])
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// subscribe subscribes to filter at qos and waits for the SUBACK.
func (c *mqttClient) subscribe(filter string, qos byte) error {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: 4, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: filter, Qos: qos}}}
	var b bytes.Buffer
	if err := pk.SubscribeEncode(&b); err != nil {
		return err
	}
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.nc.SetDeadline(time.Time{})
	if _, err := c.nc.Write(b.Bytes()); err != nil {
		return err
	}
	typ, _, body, err := c.read()
	switch {
	case err != nil:
		return fmt.Errorf("SUBACK: %w", err)
	case typ != packets.Suback || len(body) != 3:
		return fmt.Errorf("SUBACK: got packet type %d of %d bytes", typ, len(body))
	case body[2] != qos:
		return fmt.Errorf("SUBACK: granted %#x, asked QoS %d", body[2], qos)
	}
	return nil
}

// read reads one packet: its type, the flags of its first byte and its
// body, which stays valid until the next read.
func (c *mqttClient) read() (typ, flags byte, body []byte, err error) {
	h, err := c.r.ReadByte()
	if err != nil {
		return 0, 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		b, err := c.r.ReadByte()
		if err != nil {
			return 0, 0, nil, err
		}
		n += int(b&0x7f) * mul
		if b&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, 0, nil, errors.New("malformed remaining length")
		}
		mul <<= 7
	}
	if n > mqttMaxBody {
		return 0, 0, nil, fmt.Errorf("packet of %d bytes", n)
	}
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	body = c.buf[:n]
	if _, err := io.ReadFull(c.r, body); err != nil {
		return 0, 0, nil, err
	}
	return h >> 4, h & 0x0f, body, nil
}

// publishPayload splits a PUBLISH body (MQTT 3.1.1) into its packet id
// (0 at QoS 0) and payload.
func publishPayload(flags byte, body []byte) (pid uint16, payload []byte, err error) {
	if len(body) < 2 {
		return 0, nil, errors.New("short PUBLISH")
	}
	at := 2 + int(binary.BigEndian.Uint16(body))
	if flags>>1&3 > 0 {
		at += 2
		if at > len(body) {
			return 0, nil, errors.New("short PUBLISH")
		}
		pid = binary.BigEndian.Uint16(body[at-2:])
	}
	if at > len(body) {
		return 0, nil, errors.New("short PUBLISH")
	}
	return pid, body[at:], nil
}

// encodePublish is a PUBLISH packet (MQTT 3.1.1).
func encodePublish(topic string, qos byte, pid uint16, payload []byte) []byte {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, ProtocolVersion: 4, TopicName: topic,
		PacketID: pid, Payload: payload}
	var b bytes.Buffer
	if err := pk.PublishEncode(&b); err != nil {
		panic(err) // only a QoS > 0 publish without packet id fails, and the bench gives one
	}
	return b.Bytes()
}

// puback is the PUBACK of packet id pid.
func puback(pid uint16) [4]byte {
	return [4]byte{packets.Puback << 4, 2, byte(pid >> 8), byte(pid)}
}

func (c *mqttClient) close() {
	_, _ = c.nc.Write([]byte{packets.Disconnect << 4, 0})
	c.nc.Close()
}
