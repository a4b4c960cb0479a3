package gateway_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/gateway"
	"github.com/parallax-ipc/parallax/subscriber"
)

// fakeNATS is a scripted NATS server: it answers every connection's
// handshake and PINGs, and hands the gateway's raw import connection
// (named "... import" in its CONNECT) to the test once it has subscribed,
// for the test to write frames on.
type fakeNATS struct {
	t        *testing.T
	infos    []string     // the INFO line's JSON of each connection; the last for the later ones
	conns    atomic.Int32 // connections accepted
	active   atomic.Int32 // connections being served
	ln       net.Listener
	imports  chan *fakeConn
	natsSubs chan string // subjects subscribed on other connections (nats.go's)
	unsubs   chan string // sids unsubscribed on import connections
}

// fakeConn is one client connection of a fakeNATS.
type fakeConn struct {
	mu   sync.Mutex // orders writes
	c    net.Conn
	subs map[string]string // subject -> sid, written before the hand-off
	mute atomic.Bool       // stop answering PINGs
}

func (c *fakeConn) write(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.c.Write(b)
	return err
}

// writeBytes writes b one byte per write: every frame split at every byte.
func (c *fakeConn) writeBytes(b []byte) error {
	for k := range b {
		if err := c.write(b[k : k+1]); err != nil {
			return err
		}
	}
	return nil
}

func startFakeNATS(t *testing.T, infos ...string) *fakeNATS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeNATS{t: t, infos: infos, imports: make(chan *fakeConn, 8), natsSubs: make(chan string, 16), unsubs: make(chan string, 16), ln: ln}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { f.serve(c) })
		}
	})
	return f
}

func (f *fakeNATS) url() string { return "nats://" + f.ln.Addr().String() }

func (f *fakeNATS) serve(c net.Conn) {
	f.active.Add(1)
	defer f.active.Add(-1)
	defer c.Close()
	fc := &fakeConn{c: c, subs: map[string]string{}}
	info := f.infos[min(int(f.conns.Add(1))-1, len(f.infos)-1)]
	if fc.write([]byte("INFO "+info+"\r\n")) != nil {
		return
	}
	rd := bufio.NewReader(c)
	if b, err := rd.Peek(1); err != nil || b[0] == 0x16 { // a TLS handshake: not spoken here
		return
	}
	isImport, handed := false, false
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		op, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		switch strings.ToUpper(op) {
		case "CONNECT":
			var ci struct {
				Name    string `json:"name"`
				Echo    bool   `json:"echo"`
				Verbose bool   `json:"verbose"`
			}
			if json.Unmarshal([]byte(arg), &ci) != nil {
				f.t.Errorf("fake NATS: CONNECT %s is not JSON", arg)
				return
			}
			isImport = strings.HasSuffix(ci.Name, " import")
			if isImport && (ci.Echo || ci.Verbose) {
				f.t.Errorf("fake NATS: raw import connection asks for echo or verbose: %s", arg)
			}
		case "SUB":
			if fs := strings.Fields(arg); len(fs) == 2 {
				fc.subs[fs[0]] = fs[1]
				if !isImport {
					select {
					case f.natsSubs <- fs[0]:
					default:
					}
				}
			}
		case "UNSUB":
			if isImport {
				select {
				case f.unsubs <- arg:
				default:
				}
			}
		case "PING":
			if fc.mute.Load() {
				continue
			}
			if fc.write([]byte("PONG\r\n")) != nil {
				return
			}
			if isImport && !handed && len(fc.subs) > 0 {
				handed = true
				f.imports <- fc
			}
		}
	}
}

// fakeInfo is a fakeNATS's INFO.
const fakeInfo = `{"server_id":"fake","version":"2.10.0","proto":1,"headers":true,"max_payload":1048576}`

// nextImport waits for the gateway's (next) import connection.
func (f *fakeNATS) nextImport() *fakeConn {
	f.t.Helper()
	select {
	case c := <-f.imports:
		return c
	case <-time.After(20 * time.Second):
		f.t.Fatal("no import connection within 20 s")
		return nil
	}
}

// TestRawImportFakeServer: the raw import connection delivers MSG and HMSG
// frames that arrive one byte per TCP write, and a malformed frame (a
// size that is not a number, a size over the max payload, a header size
// over the total, an unknown operation) closes the connection with an
// error naming what was wrong, counted as refused; the gateway
// reconnects, subscribes again and delivers again.
func TestRawImportFakeServer(t *testing.T) {
	t.Parallel()
	fake := startFakeNATS(t, fakeInfo)
	rb := newRouter(t)
	topic := []gateway.Topic{{Name: "fk", Type: &gateway.Type{}}}
	gb, logs, stop := startGateway(t, gateway.Options{NATSURL: fake.url(), Socket: rb.cfg.Socket, Import: topic,
		NATSOptions: []nats.Option{nats.PingInterval(50 * time.Millisecond), nats.MaxPingsOutstanding(2)}})
	conn := fake.nextImport()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "fk", subscriber.Options{Socket: rb.cfg.Socket, QueueCapacity: 64})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, sub.WaitForPublishers(ctx, 1))

	seq := uint64(0)
	send := func(c *fakeConn, headers bool) {
		t.Helper()
		seq++
		p := payload(seq, 40+int(seq))
		m, err := gateway.AppendMessage(nil, gateway.Meta{Seq: seq, Publisher: 7, Gateway: "peer"}, p)
		require.NoError(t, err)
		sid := c.subs[gateway.DefaultPrefix+"fk"]
		require.NotEmpty(t, sid, "subscriptions %v", c.subs)
		var frame string
		if headers {
			h := "NATS/1.0\r\nX-Test: 1\r\n\r\n"
			frame = fmt.Sprintf("HMSG %sfk %s reply.x %d %d\r\n%s%s\r\n", gateway.DefaultPrefix, sid, len(h), len(h)+len(m), h, m)
		} else {
			frame = fmt.Sprintf("MSG %sfk %s %d\r\n%s\r\n", gateway.DefaultPrefix, sid, len(m), m)
		}
		require.NoError(t, c.writeBytes([]byte(frame)))
		s, err := sub.TakeTimeout(20 * time.Second)
		require.NoError(t, err, "message %d: %v", seq, gb.Stats())
		require.Equal(t, p, s.Bytes(), "message %d", seq)
		require.NoError(t, s.Release())
	}
	send(conn, false)
	send(conn, true)
	send(conn, false)

	for k, bad := range []struct{ frame, why string }{
		{"MSG parallax.fk 1 12x\r\n", `MSG size \"12x\" on sid 1: want a decimal number of at most 1048576 (the max payload)`},
		{"MSG parallax.fk 1 1048577\r\n", `1048577\" on sid 1: want a decimal number of at most 1048576`},
		{"HMSG parallax.fk 1 50 10\r\n", `HMSG header size \"50\" on sid 1: want a decimal number of at most 10 (the total size)`},
		{"HELLO world\r\n", `unknown operation \"HELLO world\"`},
	} {
		require.NoError(t, conn.write([]byte(bad.frame)))
		conn = fake.nextImport() // the gateway dropped the connection and came back
		eventually(t, "the malformed frame counted", func() bool { return gb.Stats().Refused == uint64(k+1) })
		require.Contains(t, logs.String(), bad.why)
		send(conn, k%2 == 0)
	}
	// A server that stops answering PINGs: the connection is stale.
	conn.mute.Store(true)
	conn = fake.nextImport()
	require.Contains(t, logs.String(), "stale connection: 2 PINGs unanswered")
	send(conn, false)

	// The importer counts a message after its Publish returns, so the
	// subscriber can take the last one before it is counted.
	eventually(t, "the importer counting the last message", func() bool { return gb.Stats().Imported == seq })
	st := gb.Stats()
	require.GreaterOrEqual(t, st.Reconnects, uint64(5), "%v", st)
	require.Equal(t, seq, st.Imported, "%v", st)
	require.Zero(t, st.Dropped+st.Gaps, "%v", st)
	// On stop the import connection unsubscribes.
	stop()
	select {
	case sid := <-fake.unsubs:
		require.Equal(t, conn.subs[gateway.DefaultPrefix+"fk"], sid)
	case <-time.After(20 * time.Second):
		t.Fatal("no UNSUB on stop")
	}
}

// TestRawImportAuth: the import connection authenticates with the user and
// password of the URL or the token of the NATS options, and a wrong
// password keeps the gateway from being ready, with the server's error in
// its log.
func TestRawImportAuth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		server server.Options
		url    func(port int) string
		opts   []nats.Option
	}{
		{"user in URL", server.Options{Username: "u", Password: "p"}, func(port int) string { return fmt.Sprintf("nats://u:p@127.0.0.1:%d", port) }, nil},
		{"token option", server.Options{Authorization: "s3cret"}, func(port int) string { return fmt.Sprintf("nats://127.0.0.1:%d", port) },
			[]nats.Option{nats.Token("s3cret")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			so := tc.server
			so.Port = -1
			ns := startNATSOpts(t, &so)
			url := tc.url(ns.Addr().(*net.TCPAddr).Port)
			rb := newRouter(t)
			topic := []gateway.Topic{{Name: "auth", Type: &gateway.Type{}}}
			gb, logs, _ := startGateway(t, gateway.Options{NATSURL: url, Socket: rb.cfg.Socket, Import: topic, NATSOptions: tc.opts})
			require.Contains(t, logs.String(), "importing through the gateway's own NATS connection")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			sub, err := subscriber.New(ctx, "auth", subscriber.Options{Socket: rb.cfg.Socket})
			require.NoError(t, err)
			defer sub.Close()
			require.NoError(t, sub.WaitForPublishers(ctx, 1))
			nc, err := nats.Connect(url, tc.opts...)
			require.NoError(t, err)
			defer nc.Close()
			m, err := gateway.AppendMessage(nil, gateway.Meta{Seq: 1, Publisher: 1, Gateway: "peer"}, []byte("secret payload"))
			require.NoError(t, err)
			require.NoError(t, nc.Publish(gateway.DefaultPrefix+"auth", m))
			require.NoError(t, nc.Flush())
			s, err := sub.TakeTimeout(20 * time.Second)
			require.NoError(t, err, "%v", gb.Stats())
			require.Equal(t, "secret payload", string(s.Bytes()))
			require.NoError(t, s.Release())
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		ns := startNATSOpts(t, &server.Options{Port: -1, Username: "u", Password: "p"})
		rb := newRouter(t)
		lb := &logBuf{t: t}
		bad, err := gateway.New(gateway.Options{NATSURL: fmt.Sprintf("nats://u:wrong@127.0.0.1:%d", ns.Addr().(*net.TCPAddr).Port),
			Socket: rb.cfg.Socket, Import: []gateway.Topic{{Name: "auth"}}, MinBackoff: 10 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(lb, nil))})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- bad.Run(ctx) }()
		eventually(t, "the import connection's authorization error logged", func() bool {
			for l := range strings.Lines(lb.String()) {
				if strings.Contains(l, "import connection to NATS failed") && strings.Contains(l, "Authorization Violation") {
					return true
				}
			}
			return false
		})
		select {
		case <-bad.Ready():
			t.Fatal("ready with a wrong password")
		default:
		}
		cancel()
		require.NoError(t, <-done)
	})
}

// TestRawImportSlowConsumer: under PolicyBlock an importer whose local
// subscriber does not take stops reading its connection; the NATS server
// gives up on it (slow consumer) and closes it. The gateway reconnects,
// delivers whole messages only, in order, and every message it did not
// deliver is counted (dropped or gaps).
func TestRawImportSlowConsumer(t *testing.T) {
	t.Parallel()
	ns := startNATSOpts(t, &server.Options{Port: -1, MaxPending: 256 << 10, MaxPayload: 64 << 10, WriteDeadline: 200 * time.Millisecond})
	rb := newRouter(t)
	topic := []gateway.Topic{{Name: "slow", Type: &gateway.Type{}}}
	gb, _, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: rb.cfg.Socket, Import: topic, Policy: gateway.PolicyBlock})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "slow", subscriber.Options{Socket: rb.cfg.Socket, QueueCapacity: 4, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, sub.WaitForPublishers(ctx, 1))
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	seq := uint64(0)
	send := func() {
		seq++
		m, err := gateway.AppendMessage(nil, gateway.Meta{Seq: seq, Publisher: 1, Gateway: "peer"}, payload(seq, 1000))
		require.NoError(t, err)
		require.NoError(t, nc.Publish(gateway.DefaultPrefix+"slow", m))
	}
	// More than the socket buffers, the read buffer and the server's
	// pending limit hold while the subscriber takes nothing.
	for ns.NumSlowConsumers() == 0 {
		for range 1000 {
			send()
		}
		require.NoError(t, nc.Flush())
		require.Less(t, seq, uint64(1e6), "the server never gave up on the importer")
	}
	var got []uint64
	take := func() bool {
		s, err := sub.TakeTimeout(200 * time.Millisecond)
		if err != nil {
			return false
		}
		require.Len(t, s.Bytes(), 1000)
		n := binary.LittleEndian.Uint64(s.Bytes())
		require.Equal(t, payload(n, 1000), s.Bytes(), "message %d is whole", n)
		if len(got) > 0 {
			require.Greater(t, n, got[len(got)-1], "order")
		}
		got = append(got, n)
		require.NoError(t, s.Release())
		return true
	}
	eventually(t, "the importer reconnecting", func() bool {
		for take() {
		}
		return gb.Stats().Reconnects >= 1
	})
	// After the reconnection a new message arrives; send until one does.
	last := len(got)
	eventually(t, "delivery after the reconnection", func() bool {
		send()
		require.NoError(t, nc.Flush())
		for take() {
		}
		return len(got) > last && got[len(got)-1] == seq
	})
	eventually(t, "the importer counting", func() bool { return gb.Stats().Imported == uint64(len(got)) })
	st := gb.Stats()
	lost := seq - uint64(len(got))
	require.Positive(t, lost, "the server dropped messages for the slow consumer")
	require.GreaterOrEqual(t, st.Dropped+st.Gaps, lost, "every message not delivered is counted; %v", st)
	require.Zero(t, st.Refused, "%v", st)
	t.Logf("sent %d, delivered %d; %v", seq, len(got), st)
}

// TestRawImportTLSRequired: a server that requires TLS makes the import
// connection give way to nats.go subscriptions, logged with the reason.
// (The fake asks only the second connection, the import one, for TLS:
// nats.go v1.55.0 leaks the socket of a failed TLS handshake.)
func TestRawImportTLSRequired(t *testing.T) {
	t.Parallel()
	fake := startFakeNATS(t, fakeInfo, `{"server_id":"fake","proto":1,"headers":true,"max_payload":1048576,"tls_required":true}`)
	rb := newRouter(t)
	lb := &logBuf{t: t}
	g, err := gateway.New(gateway.Options{NATSURL: fake.url(), Socket: rb.cfg.Socket, Import: []gateway.Topic{{Name: "tls"}},
		MinBackoff: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(lb, nil))})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	eventually(t, "the fallback logged", func() bool {
		return strings.Contains(lb.String(), `msg="importing through nats.go" gateway=`+g.ID()+` reason="server `+fake.ln.Addr().String()+` requires TLS`)
	})
	select {
	case subj := <-fake.natsSubs:
		require.Equal(t, gateway.DefaultPrefix+"tls", subj)
	case <-time.After(20 * time.Second):
		t.Fatal("no subscription on the nats.go connection")
	}
	cancel()
	require.NoError(t, <-done)
	eventually(t, "the gateway's connections closed", func() bool { return fake.active.Load() == 0 })
}
