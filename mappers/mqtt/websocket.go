package mqtt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/meshka/meshka/netguard"
)

// wsPath is where MQTT over WebSocket is served.
const wsPath = "/mqtt"

// wsServer serves MQTT over WebSocket (subprotocol "mqtt", binary
// messages carrying the packets' bytes) on mqtt.websocket.
type wsServer struct {
	srv *http.Server
	ln  net.Listener
	wg  sync.WaitGroup
}

func (b *Broker) listenWebSocket(maxConns int) (*wsServer, error) {
	raw, err := net.Listen("tcp", b.cfg.WebSocket)
	if err != nil {
		return nil, fmt.Errorf("mqtt.websocket: %w", err)
	}
	gl := netguard.Listen(raw, "mqtt-websocket", netguard.Limits{MaxConns: maxConns}, b.log)
	gl.Register(b.env.Metrics, "mqtt", "websocket")
	ln := gl.NetListener(b.metrics.bytesIn, b.metrics.bytesOut)
	ws := &wsServer{ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc(wsPath, func(w http.ResponseWriter, r *http.Request) {
		wc, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"mqtt"}, InsecureSkipVerify: true})
		if err != nil {
			return // Accept answered the request
		}
		if wc.Subprotocol() != "mqtt" {
			wc.Close(websocket.StatusPolicyViolation, "the subprotocol must be mqtt")
			return
		}
		wc.SetReadLimit(int64(b.cfg.MaxPacketSize) + 16)
		nc := websocket.NetConn(b.ctx, wc, websocket.MessageBinary)
		if !b.track(1) {
			nc.Close()
			return
		}
		// The connection is served here, on the HTTP server's goroutine
		// for it, which the handler returning would end.
		defer b.wg.Done()
		newConn(b, wsConn{Conn: nc, remote: r.RemoteAddr}).run()
	})
	ws.srv = &http.Server{Handler: mux, ReadHeaderTimeout: connectTimeout, TLSConfig: b.env.TLS,
		ErrorLog: nil}
	ws.wg.Add(1)
	go func() {
		defer ws.wg.Done()
		var err error
		if b.env.TLS != nil {
			err = ws.srv.ServeTLS(ln, "", "")
		} else {
			err = ws.srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Warn("MQTT WebSocket listener ended", "err", err)
		}
	}()
	return ws, nil
}

// close stops the WebSocket listener; connections end with the broker's.
func (ws *wsServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ws.srv.Shutdown(ctx)
	ws.ln.Close()
	ws.wg.Wait()
}

// wsConn is a WebSocket connection as a net.Conn, with the client's
// address (NetConn's is not the peer's).
type wsConn struct {
	net.Conn
	remote string
}

func (w wsConn) RemoteAddr() net.Addr {
	if a, err := net.ResolveTCPAddr("tcp", w.remote); err == nil {
		return a
	}
	return w.Conn.RemoteAddr()
}
