package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// sseClient is the bench's Server-Sent Events reader: a raw HTTP/1.1
// GET on a connection of its own, the chunked body decoded by net/http's
// response reader, events parsed line by line and handed to event on the
// client's one goroutine. It costs the bench far less than net/http's
// client (two goroutines and their buffers per connection), so 10,000 of
// them fit beside the node they read.
type sseClient struct {
	nc      net.Conn
	event   func(data []byte)
	closing atomic.Bool
	err     error // why reading ended; read after done
	done    chan struct{}
}

// dialSSE opens a stream at http://addr+path and starts reading it once
// the response's header has come: the node subscribes before it answers,
// so the stream has every record written from then on.
func dialSSE(addr, path string, event func(data []byte)) (*sseClient, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path, addr); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("stream's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		nc.Close()
		return nil, fmt.Errorf("stream answered %s (%s)", resp.Status, resp.Header.Get("Content-Type"))
	}
	_ = nc.SetDeadline(time.Time{})
	c := &sseClient{nc: nc, event: event, done: make(chan struct{})}
	go c.read(resp.Body)
	return c, nil
}

// read parses events until the stream ends: data lines joined by
// newlines, dispatched at the blank line; ids, retry and comments are
// skipped.
func (c *sseClient) read(body io.ReadCloser) {
	defer close(c.done)
	defer body.Close()
	r := bufio.NewReaderSize(body, 2048)
	var data, long []byte
	have := false
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil {
			if !c.closing.Load() {
				c.err = err
			}
			return
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		switch {
		case len(line) == 0:
			if have {
				c.event(data)
			}
			data, have = data[:0], false
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(line[len("data:"):], []byte(" "))
			if have {
				data = append(data, '\n')
			}
			data, have = append(data, v...), true
		}
	}
}

// close ends the stream and waits for its goroutine.
func (c *sseClient) close() {
	c.closing.Store(true)
	c.nc.Close()
	<-c.done
}

// closeSSE closes every client; the first error any had while reading,
// which means the node ended a stream.
func closeSSE(clients []*sseClient) error {
	for _, c := range clients {
		if c != nil {
			c.closing.Store(true)
			c.nc.Close()
		}
	}
	var first error
	for i, c := range clients {
		if c == nil {
			continue
		}
		<-c.done
		if c.err != nil && first == nil {
			first = fmt.Errorf("stream %d ended: %w", i, c.err)
		}
	}
	return first
}
