package mqtt

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/mappers/mqtt/session"
	"github.com/meshka/meshka/mappers/mqtt/wire"
)

// connectTimeout bounds how long a new connection may take to send its
// CONNECT.
const connectTimeout = 10 * time.Second

// conn is one client connection and, once its CONNECT is accepted, the
// session it holds. Its read loop (run) handles the client's packets in
// order; each subscription delivers on a goroutine of its own; writes go
// through the outbox.
type conn struct {
	b    *Broker
	nc   net.Conn
	rd   *wire.Reader
	out  *outbox
	log  loggerFunc
	host netip.Addr

	version   byte
	clientID  string
	principal string
	keepAlive time.Duration
	// what the client told in CONNECT (MQTT 5), with defaults
	clientReceiveMax uint16
	clientMaxPacket  uint32
	clientAliasMax   uint16
	will             *packets.Packet // nil: none

	ctx    context.Context // ends when the connection ends: deliveries stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // deliveries

	lease *lease

	mu      sync.Mutex
	st      *session.State
	ids     session.PacketIDs
	subs    map[string]*running // by subscription key
	aliases map[uint16]string   // the client's topic aliases
	// outAliases are the topic aliases meshka set on what it sent, under
	// aliasMu, which also keeps the order packets are queued in the order
	// their aliases were set.
	aliasMu    sync.Mutex
	outAliases map[string]uint16
	inflight   int // QoS 1 and 2 publishes from the client not yet answered
	acks       ackQueue
	quota      chan struct{} // a token per QoS 1 or 2 message the client may still take
	shared     map[uint16]sharedPending
	dirty      bool
	saving     bool
	ended      bool
	graceful   bool        // the client sent DISCONNECT (without will)
	serverEnd  *wire.Error // why the server ended it (shutdown, takeover); nil: the client did
}

type loggerFunc func(msg string, args ...any)

func newConn(b *Broker, nc net.Conn) *conn {
	c := &conn{b: b, nc: nc, rd: wire.NewReader(nc, int(b.cfg.MaxPacketSize)), clientReceiveMax: 65535,
		subs: map[string]*running{}, aliases: map[uint16]string{}, shared: map[uint16]sharedPending{}}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.host = ap.Addr().Unmap()
	}
	c.out = newOutbox(nc, int(b.cfg.MaxQueuedBytes), &c.wg)
	c.log = func(msg string, args ...any) {
		b.log.Debug(msg, append([]any{"client", c.clientID, "remote", nc.RemoteAddr().String()}, args...)...)
	}
	c.ctx, c.cancel = context.WithCancel(b.ctx)
	return c
}

// run serves the connection until it ends.
func (c *conn) run() {
	defer c.nc.Close()
	c.nc.SetReadDeadline(time.Now().Add(connectTimeout))
	if tc, ok := c.nc.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(c.ctx, connectTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			c.log("TLS handshake failed", "err", err)
			return
		}
	}
	pk, err := c.rd.ReadPacket()
	if err != nil {
		c.refuseFirst(err)
		return
	}
	if pk.FixedHeader.Type != packets.Connect {
		// [MQTT-3.1.0-1]: the first packet must be CONNECT; close.
		c.log("first packet is not CONNECT", "type", pk.FixedHeader.Type)
		return
	}
	if !c.deep(func() bool { return c.connect(pk) }) {
		c.out.close()
		c.wg.Wait()
		return
	}
	c.b.register(c)
	defer c.b.unregister(c)
	err = c.readLoop()
	c.end(err)
}

// refuseFirst answers a first packet that did not read.
func (c *conn) refuseFirst(err error) {
	var we *wire.Error
	if !errors.As(err, &we) {
		return
	}
	c.log("CONNECT refused", "err", err)
	if we.Code == packets.ErrProtocolViolationProtocolVersion || we.Code == packets.ErrUnsupportedProtocolVersion {
		// A version we do not speak: the 3.1.1 CONNACK says so (0x01),
		// which every version's client reads.
		c.sendNow(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ProtocolVersion: wire.V311,
			ReasonCode: packets.Err3UnsupportedProtocolVersion.Code})
		return
	}
	if c.rd.Version() == wire.V5 {
		c.sendNow(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ProtocolVersion: wire.V5, ReasonCode: we.Code.Code,
			Properties: packets.Properties{ReasonString: we.Code.Reason}})
	}
}

// sendNow writes pk at once, bypassing the outbox; for a refusal before
// the connection is served.
func (c *conn) sendNow(pk *packets.Packet) {
	buf, err := encode(pk)
	if err != nil {
		return
	}
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.nc.Write(buf)
}

// connect handles the CONNECT: authentication, the client id, taking the
// session over, the CONNACK, and resuming the session's subscriptions.
// It says whether the connection is served.
func (c *conn) connect(pk *packets.Packet) bool {
	c.version = pk.ProtocolVersion
	if code := pk.ConnectValidate(); code != packets.CodeSuccess {
		c.connack(false, code, nil)
		return false
	}
	cn := &pk.Connect
	if !c.authenticate(cn) {
		return false
	}
	c.clientID = cn.ClientIdentifier
	var assigned string
	if c.clientID == "" {
		if c.version != wire.V5 && !cn.Clean {
			// [MQTT-3.1.3-8]
			c.connack(false, packets.ErrClientIdentifierNotValid, nil)
			return false
		}
		c.clientID = "meshka-" + randomID()
		assigned = c.clientID
	}
	c.keepAlive = time.Duration(cn.Keepalive) * time.Second
	var serverKeepAlive *uint16
	if max := c.b.cfg.MaxKeepAlive.D(); max > 0 && (c.keepAlive == 0 || c.keepAlive > max) {
		c.keepAlive = max
		ka := uint16(max / time.Second)
		serverKeepAlive = &ka
	}
	expiry := c.sessionExpiry(pk)
	if c.version == wire.V5 {
		if rm := pk.Properties.ReceiveMaximum; rm > 0 {
			c.clientReceiveMax = rm
		}
		c.clientMaxPacket = pk.Properties.MaximumPacketSize
		c.clientAliasMax = pk.Properties.TopicAliasMaximum
	}
	if cn.WillFlag {
		c.will = willOf(pk, c.version)
	}
	quota := min(int(c.clientReceiveMax), c.b.cfg.MaxInflight)
	c.quota = make(chan struct{}, quota)
	for range quota {
		c.quota <- struct{}{}
	}

	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	// A session that outlives its connection is held through the
	// cluster; so is a clean one replacing such a session, which a
	// connection elsewhere may hold.
	persistent := expiry > 0 || !cn.Clean || c.b.sessionKept(ctx, c.clientID)
	l, err := c.b.acquire(ctx, c.clientID, c, persistent)
	if err != nil {
		c.log("session not taken over", "err", err)
		c.connack(false, packets.ErrServerUnavailable, nil)
		return false
	}
	c.lease = l
	c.b.cancelTimers(c.clientID)
	st, present, err := c.b.loadSession(ctx, c.clientID, cn.Clean)
	if err != nil {
		c.log("session not loaded", "err", err)
		l.releaseNow()
		c.connack(false, packets.ErrServerUnavailable, nil)
		return false
	}
	st.Expiry = expiry
	st.Disconnected = 0
	st.Node = c.b.env.NodeID
	c.st = st
	st.Prune()
	for _, pd := range st.Outbound {
		c.ids.Hold(pd.PacketID)
		select {
		case <-c.quota:
		default:
		}
	}
	props := &packets.Properties{}
	if c.version == wire.V5 {
		props.ReceiveMaximum = uint16(min(c.b.cfg.MaxInflight, 65535))
		props.MaximumPacketSize = uint32(c.b.cfg.MaxPacketSize)
		props.TopicAliasMaximum = uint16(c.b.cfg.TopicAliasMaximum)
		props.RetainAvailable, props.RetainAvailableFlag = 1, true
		props.WildcardSubAvailable, props.WildcardSubAvailableFlag = 1, true
		props.SubIDAvailable, props.SubIDAvailableFlag = 1, true
		props.SharedSubAvailable, props.SharedSubAvailableFlag = 1, true
		props.AssignedClientID = assigned
		if serverKeepAlive != nil {
			props.ServerKeepAlive, props.ServerKeepAliveFlag = *serverKeepAlive, true
		}
		if requested := pk.Properties.SessionExpiryInterval; requested != expiry {
			props.SessionExpiryInterval, props.SessionExpiryIntervalFlag = expiry, true
		}
	}
	c.nc.SetReadDeadline(time.Time{})
	c.connack(present, packets.CodeSuccess, props)
	c.log("connected", "version", c.version, "session_present", present, "expiry", expiry)
	if err := c.save(ctx, false); err != nil {
		c.log("session not saved", "err", err)
	}
	c.resume()
	return true
}

// deep runs f, a packet's handling that goes deep into the mesh API
// (leases, tables, subscriptions), on a goroutine of its own and waits
// for it: the read loop's goroutine, which an idle connection keeps,
// never grows the stack f needs.
func (c *conn) deep(f func() bool) bool {
	done := make(chan bool, 1)
	go func() { done <- f() }()
	return <-done
}

// sessionExpiry is the session expiry interval the connection gets, in
// seconds, bounded by mqtt.max_session_expiry.
func (c *conn) sessionExpiry(pk *packets.Packet) uint32 {
	max := uint32(c.b.cfg.MaxSessionExpiry.D() / time.Second)
	if c.version != wire.V5 {
		if pk.Connect.Clean {
			return 0
		}
		return max
	}
	return min(pk.Properties.SessionExpiryInterval, max)
}

// authenticate checks the CONNECT's username and password, or the
// client certificate, and answers a refusal.
func (c *conn) authenticate(cn *packets.ConnectParams) bool {
	if tc, ok := c.nc.(*tls.Conn); ok {
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			p, err := auth.CertPrincipal(certs[0], nil)
			if err == nil {
				c.principal = p
			}
		}
	}
	if cn.UsernameFlag {
		if err := c.b.env.Users.CheckPassword(string(cn.Username), string(cn.Password)); err != nil {
			c.b.log.Info("MQTT authentication failed", "remote", c.nc.RemoteAddr().String(), "user", string(cn.Username), "err", err)
			time.Sleep(100 * time.Millisecond) // pace guessing
			c.connack(false, packets.ErrBadUsernameOrPassword, nil)
			return false
		}
		c.principal = auth.UserPrincipal(string(cn.Username))
		return true
	}
	if c.principal == "" && !c.b.cfg.AllowAnonymous {
		c.connack(false, packets.ErrNotAuthorized, nil)
		return false
	}
	if c.principal == "" {
		c.principal = "User:ANONYMOUS"
	}
	return true
}

// connack answers the CONNECT; a refusal (code not success) is written
// at once, and the connection is to be closed.
func (c *conn) connack(present bool, code packets.Code, props *packets.Properties) {
	pk := &packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ProtocolVersion: c.version, SessionPresent: present}
	if props != nil {
		pk.Properties = *props
	}
	if c.version == wire.V5 {
		pk.ReasonCode = code.Code
		if code.Code >= 0x80 {
			pk.Properties.ReasonString = code.Reason
		}
	} else {
		pk.ReasonCode = v3Code(code)
	}
	if code.Code >= 0x80 {
		c.sendNow(pk)
		return
	}
	c.send(pk)
}

// v3Code is the MQTT 3.1.1 CONNACK return code for an MQTT 5 reason.
func v3Code(code packets.Code) byte {
	switch code {
	case packets.CodeSuccess:
		return 0
	case packets.ErrUnsupportedProtocolVersion, packets.ErrProtocolViolationProtocolVersion:
		return 1
	case packets.ErrClientIdentifierNotValid:
		return 2
	case packets.ErrBadUsernameOrPassword:
		return 4
	case packets.ErrNotAuthorized:
		return 5
	}
	return 3 // server unavailable
}

// readLoop handles packets until the connection ends, and returns why.
func (c *conn) readLoop() error {
	for {
		if c.keepAlive > 0 {
			// [MQTT-3.1.2-22]: one and a half keep alives without a packet
			// end the connection.
			c.nc.SetReadDeadline(time.Now().Add(c.keepAlive * 3 / 2))
		}
		// After the deadline is set: a takeover or shutdown from here on
		// sets its own, which ends the read.
		c.mu.Lock()
		ended := c.serverEnd != nil
		c.mu.Unlock()
		if ended {
			return errShutdown
		}
		pk, err := c.rd.ReadPacket()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return errKeepAlive
			}
			return err
		}
		if err := c.handle(pk); err != nil {
			return err
		}
	}
}

// Why a connection ended, when it was not the client's read failing.
var (
	errKeepAlive  = &wire.Error{Code: packets.ErrKeepAliveTimeout}
	errDisconnect = errors.New("mqtt: client disconnected")
	errTakenOver  = &wire.Error{Code: packets.ErrSessionTakenOver}
	errShutdown   = &wire.Error{Code: packets.ErrServerShuttingDown}
)

func protocolError(reason string) *wire.Error {
	return &wire.Error{Code: packets.Code{Code: packets.ErrProtocolViolation.Code, Reason: reason}}
}

// handle handles one packet of a connected client; an error ends the
// connection.
func (c *conn) handle(pk *packets.Packet) error {
	switch pk.FixedHeader.Type {
	case packets.Connect:
		return protocolError("a second CONNECT") // [MQTT-3.1.0-2]
	case packets.Publish:
		return c.publish(pk)
	case packets.Puback:
		c.acknowledged(pk.PacketID, false)
	case packets.Pubrec:
		c.received(pk)
	case packets.Pubrel:
		c.release(pk)
	case packets.Pubcomp:
		c.acknowledged(pk.PacketID, true)
	case packets.Subscribe:
		var err error
		c.deep(func() bool { err = c.subscribe(pk); return true })
		return err
	case packets.Unsubscribe:
		var err error
		c.deep(func() bool { err = c.unsubscribe(pk); return true })
		return err
	case packets.Pingreq:
		c.send(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingresp}})
	case packets.Disconnect:
		if c.version == wire.V5 && pk.Properties.SessionExpiryIntervalFlag {
			if c.st.Expiry == 0 && pk.Properties.SessionExpiryInterval != 0 {
				return protocolError("session expiry set on DISCONNECT after 0 on CONNECT") // [MQTT-3.14.2-2]
			}
			c.mu.Lock()
			c.st.Expiry = min(pk.Properties.SessionExpiryInterval, uint32(c.b.cfg.MaxSessionExpiry.D()/time.Second))
			c.mu.Unlock()
		}
		c.graceful = pk.ReasonCode != 0x04 // 0x04: disconnect with will message
		return errDisconnect
	case packets.Auth:
		return &wire.Error{Code: packets.ErrBadAuthenticationMethod}
	default:
		return protocolError("a packet only a server sends")
	}
	return nil
}

// send queues pk for the client; control packets are never dropped.
func (c *conn) send(pk *packets.Packet) {
	pk.ProtocolVersion = c.version
	buf, err := encode(pk)
	if err != nil {
		c.log("packet not encoded", "err", err)
		return
	}
	c.out.put(buf, kindControl)
}

// shutdown makes the connection end as the node stops.
func (c *conn) shutdown() { c.endByServer(errShutdown) }

// takeover makes the connection end because a CONNECT elsewhere takes
// its session over.
func (c *conn) takeover() { c.endByServer(errTakenOver) }

func (c *conn) endByServer(why *wire.Error) {
	c.mu.Lock()
	first := c.serverEnd == nil
	if first {
		c.serverEnd = why
		c.acks.freed() // a read loop waiting for room ends
	}
	c.mu.Unlock()
	if first {
		c.disconnect(why)
	}
}

// disconnect tells an MQTT 5 client why the server ends the connection
// and unblocks the read loop, which ends it.
func (c *conn) disconnect(why *wire.Error) {
	if c.version == wire.V5 {
		c.send(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ReasonCode: why.Code.Code,
			Properties: packets.Properties{ReasonString: why.Code.Reason}})
	}
	c.out.flushThenClose(time.Second)
	c.nc.SetReadDeadline(time.Now())
}

// end ends the connection: deliveries stop, the will is published or
// scheduled, the session is saved (or deleted) and its lease released.
func (c *conn) end(why error) {
	c.mu.Lock()
	serverEnd, graceful := c.serverEnd, c.graceful
	c.ended = true
	c.mu.Unlock()
	takenOver := serverEnd == errTakenOver
	var we *wire.Error
	switch {
	case serverEnd != nil:
		why = serverEnd
	case errors.As(why, &we):
		// a packet refused or the keep alive passed: tell an MQTT 5 client
		c.log("connection ended", "err", why)
		c.disconnect(we)
	case errors.Is(why, io.EOF), errors.Is(why, errDisconnect):
	default:
		c.log("connection ended", "err", why)
	}
	c.cancel()
	c.stopSubscriptions()
	c.out.flushThenClose(time.Second)
	c.nc.Close()
	c.wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.mu.Lock()
	c.st.Disconnected = time.Now().UnixMilli()
	c.st.Forget("") // a share's unacknowledged records come again from its commits
	c.mu.Unlock()
	if c.will != nil && !graceful {
		c.b.willOnEnd(ctx, c, takenOver)
	}
	if c.st.Expiry == 0 {
		if err := c.b.deleteSession(ctx, c.clientID); err != nil {
			c.log("session not deleted", "err", err)
		}
	} else {
		if err := c.save(ctx, true); err != nil {
			c.log("session not saved", "err", err)
		}
		c.b.expireLater(c.clientID, c.st.Disconnected, c.st.Expiry)
	}
	c.lease.releaseNow()
	c.log("disconnected", "why", why)
}

// randomID is 16 random hex digits.
func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
