package main

import (
	"bufio"
	"bytes"
	"net"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// The bench's MQTT reader takes mochi-mqtt's encoding back: a QoS 1
// PUBLISH whose remaining length takes two bytes, then a QoS 0 one.
func TestMQTTClientRead(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	c := &mqttClient{nc: client, r: bufio.NewReader(client)}
	big := bytes.Repeat([]byte{'x'}, 300)
	go func() {
		server.Write(encodePublish("a/b", 1, 7, big))
		server.Write(encodePublish("a/b", 0, 0, []byte("hi")))
	}()
	typ, flags, body, err := c.read()
	if err != nil || typ != packets.Publish {
		t.Fatalf("first packet: type %d, %v", typ, err)
	}
	pid, pl, err := publishPayload(flags, body)
	if err != nil || pid != 7 || !bytes.Equal(pl, big) {
		t.Fatalf("first publish: pid %d, %d payload bytes, %v", pid, len(pl), err)
	}
	typ, flags, body, err = c.read()
	if err != nil || typ != packets.Publish {
		t.Fatalf("second packet: type %d, %v", typ, err)
	}
	if pid, pl, err := publishPayload(flags, body); err != nil || pid != 0 || string(pl) != "hi" {
		t.Fatalf("second publish: pid %d, payload %q, %v", pid, pl, err)
	}
	if ack := puback(0x0102); ack != [4]byte{0x40, 2, 1, 2} {
		t.Fatalf("PUBACK % x", ack)
	}
}
