package httpmap_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// An HTTP/1.1 stream takes its connection over: the head says Connection:
// close with no chunking (the body ends with the connection), events are
// written straight to the socket, and a node's stop ends the stream.
func TestStreamTakesTheConnectionOver(t *testing.T) {
	env, base := start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nc, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := nc.Write([]byte("GET /stream HTTP/1.1\r\nHost: meshka\r\nOrigin: http://app.example\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(nc)
	tp := textproto.NewReader(rd)
	status, err := tp.ReadLine()
	if err != nil || status != "HTTP/1.1 200 OK" {
		t.Fatalf("status line %q, %v", status, err)
	}
	head, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	if head.Get("Connection") != "close" || head.Get("Transfer-Encoding") != "" || head.Get("Content-Type") != "text/event-stream" {
		t.Errorf("head %v", head)
	}
	kc, err := kgo.NewClient(kgo.SeedBrokers(env.Node.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	if err := kc.ProduceSync(ctx, &kgo.Record{Topic: "events", Key: []byte("k"), Value: []byte("over the socket")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if ev := readEvents(t, rd, 1); ev[0].data != "over the socket" {
		t.Errorf("event %+v", ev[0])
	}

	// Stopping the mapper ends the stream: the connection closes.
	b, _ := env.Node.Binding("http")
	stopped := make(chan error, 1)
	go func() { stopped <- b.Stop(ctx) }()
	for {
		if _, err := rd.ReadByte(); err != nil {
			break
		}
	}
	if err := <-stopped; err != nil && err != http.ErrServerClosed {
		t.Errorf("stop: %v", err)
	}
}
