package core

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of roudi/testdata/*.txt scripts")

// TestScripts runs the datadriven scripts in testdata. Each block is one or
// more commands, a "----" line and the expected actions (Log actions below
// warn are left out), ended by a blank line. Run with -rewrite to
// regenerate the expected output. Commands:
//
//	config key=value...          limits (max_clients, max_topics, max_publishers, max_subscribers,
//	                             max_connections, max_history, max_queue_capacity, max_message_size),
//	                             default_cap, max_cap, hello; memory keys (memory_script_test.go);
//	                             manual_segments=1: the script acknowledges segment creations itself
//	                             (dataseg, connseg); otherwise every creation succeeds at once
//	rule topic=P [pub_uids=1,2] [pub_gids=..] [sub_uids=..] [sub_gids=..]
//	accept cN
//	connect cN pid=P [uid=U] [gid=G] [name=S]
//	pub cN topic=T type=Name/Size[/Align] [history=H] [req=R]
//	sub cN topic=T type=Name/Size[/Align] [cap=C] [history=H] [policy=discard|block] [req=R]
//	closepub cN pub=ID [req=R]       closesub cN sub=ID [req=R]
//	disconnect cN                    kill pid=P
//	tick [n=N]                       snapshot
//	advance n=N   (one Tick{N: N})   next-tick   (prints Router.NextTick)
//	adopt clients=1,2                (a restarted router reserves ids, without identities)
//	restart                          (a new router adopts the clients registered now, with the
//	                                 identities recorded at their Welcome)
//	resume cN client=ID [token=issued|wrong] [topic=T type=..] [pubs=ID,..] [subs=ID,..]
//	       [links=ID/PUB/SUB,..]     (endpoints and connections to restore; capacity 16)
//	deadline                         (the resume grace period ends)
//	watch cN [req=R]                 (the client watches services: watch.go)
//	report cN conn=ID [ref=R]        (a bad-ref report)
//	ringreport cN conn=ID            (a corrupt-ring report)
//
// Memory (memory_script_test.go): dataseg, connseg, memory, and the
// growth commands of memory_grow_script_test.go.
func TestScripts(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			t.Parallel()
			runScript(t, f)
		})
	}
}

type scriptBlock struct {
	pre      []string // comments and blank lines before the block
	cmds     []string
	expected []string
	line     int
}

func parseScript(t *testing.T, data string) (blocks []scriptBlock, trailer []string) {
	lines := strings.Split(strings.TrimRight(data, "\n"), "\n")
	var cur scriptBlock
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case len(cur.cmds) == 0 && (strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#")):
			cur.pre = append(cur.pre, l)
		case l == "----":
			require.NotEmpty(t, cur.cmds, "line %d: ---- without commands", i+1)
			for i++; i < len(lines) && lines[i] != ""; i++ {
				cur.expected = append(cur.expected, lines[i])
			}
			blocks = append(blocks, cur)
			cur = scriptBlock{}
		default:
			if len(cur.cmds) == 0 {
				cur.line = i + 1
			}
			cur.cmds = append(cur.cmds, l)
		}
	}
	require.Empty(t, cur.cmds, "commands without ---- at the end")
	return blocks, cur.pre
}

func runScript(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	blocks, trailer := parseScript(t, string(data))
	s := &scriptState{t: t, cfg: DefaultRules(), opts: RouterOptions{
		Rand:  &countingReader{},
		Sizes: testSizes,
	}}
	var out strings.Builder
	for i, b := range blocks {
		var got []string
		for _, cmd := range b.cmds {
			got = append(got, s.run(fmt.Sprintf("%s:%d", path, b.line), cmd)...)
		}
		if len(got) == 0 {
			got = []string{"ok"}
		}
		if *rewrite {
			if i > 0 {
				out.WriteString("\n") // the blank line that ended the previous block
			}
			for _, l := range b.pre {
				out.WriteString(l + "\n")
			}
			out.WriteString(strings.Join(b.cmds, "\n") + "\n----\n" + strings.Join(got, "\n") + "\n")
			continue
		}
		require.Equal(t, strings.Join(b.expected, "\n"), strings.Join(got, "\n"),
			"%s:%d: %s", path, b.line, strings.Join(b.cmds, "; "))
	}
	if *rewrite {
		if len(trailer) > 0 {
			out.WriteString("\n")
		}
		for _, l := range trailer {
			out.WriteString(l + "\n")
		}
		require.NoError(t, os.WriteFile(path, []byte(out.String()), 0o644))
	}
}

type scriptState struct {
	t      *testing.T
	cfg    Rules
	opts   RouterOptions
	r      *Router
	req    uint32
	tokens map[ClientID]ResumeToken // issued at Welcome
	idents map[ClientID]ClientIdentity
	// manual: the script acknowledges segment creations itself (config
	// manual_segments=1); otherwise run acknowledges each at once.
	manual bool
}

func (s *scriptState) router() *Router {
	if s.r == nil {
		rules := s.cfg.Clone()
		s.opts.Rules = &rules
		r, err := NewRouter(s.opts)
		require.NoError(s.t, err)
		s.r = r
	}
	return s.r
}

func (s *scriptState) run(where, line string) []string {
	t := s.t
	f := strings.Fields(line)
	cmd, pos, kv := f[0], []string{}, map[string]string{}
	for _, a := range f[1:] {
		if k, v, ok := strings.Cut(a, "="); ok {
			kv[k] = v
		} else {
			pos = append(pos, a)
		}
	}
	num := func(k string, def int) int {
		v, ok := kv[k]
		if !ok {
			return def
		}
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "%s: %s", where, line)
		return n
	}
	conn := func() ConnID {
		require.Len(t, pos, 1, "%s: %s: want one connection argument", where, line)
		n, err := strconv.ParseUint(strings.TrimPrefix(pos[0], "c"), 10, 64)
		require.NoError(t, err, "%s: %s", where, line)
		return ConnID(n)
	}
	reqID := func() uint32 {
		s.req++
		return uint32(num("req", int(s.req)))
	}
	typ := func() TypeInfo {
		parts := strings.Split(kv["type"], "/")
		ti := TypeInfo{Name: parts[0], Size: 8, Align: 8}
		if len(parts) > 1 {
			n, err := strconv.Atoi(parts[1])
			require.NoError(t, err, where)
			ti.Size = uint32(n)
		}
		if len(parts) > 2 {
			n, err := strconv.Atoi(parts[2])
			require.NoError(t, err, where)
			ti.Align = uint32(n)
		}
		return ti
	}
	ids := func(k string) []uint32 {
		var out []uint32
		for v := range strings.SplitSeq(kv[k], ",") {
			if v == "" {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 32)
			require.NoError(t, err, where)
			out = append(out, uint32(n))
		}
		return out
	}

	var ev Event
	switch cmd {
	case "config":
		require.Nil(t, s.r, "%s: config after the router started", where)
		l := &s.cfg.Limits
		for k := range kv {
			switch k {
			case "max_clients":
				l.MaxClients = num(k, 0)
			case "max_topics":
				l.MaxTopics = num(k, 0)
			case "max_publishers":
				l.MaxPublishers = num(k, 0)
			case "max_subscribers":
				l.MaxSubscribers = num(k, 0)
			case "max_connections":
				l.MaxConnections = num(k, 0)
			case "max_history":
				l.MaxHistory = num(k, 0)
			case "max_queue_capacity":
				l.MaxQueueCapacity = num(k, 0)
			case "max_message_size":
				l.MaxMessageSize = uint64(num(k, 0))
			case "default_cap":
				s.cfg.Rings.DefaultCapacity = num(k, 0)
			case "max_cap":
				s.cfg.Rings.MaxCapacity = num(k, 0)
			case "hello":
				s.opts.HelloTimeout = num(k, 0)
			case "manual_segments":
				s.manual = num(k, 0) == 1
			default:
				if !s.memoryConfig(k, kv[k], num) {
					t.Fatalf("%s: unknown config key %q", where, k)
				}
			}
		}
		return nil
	case "rule":
		require.Nil(t, s.r, "%s: rule after the router started", where)
		s.cfg.Access = append(s.cfg.Access, AccessRule{
			Topic: kv["topic"], PublishUIDs: ids("pub_uids"), PublishGIDs: ids("pub_gids"),
			SubscribeUIDs: ids("sub_uids"), SubscribeGIDs: ids("sub_gids"),
		})
		return nil
	case "accept":
		ev = ConnAccepted{Conn: conn()}
	case "connect":
		ev = ClientConnected{Conn: conn(), PID: int32(num("pid", 0)), UID: uint32(num("uid", 0)), GID: uint32(num("gid", 0)), Name: kv["name"]}
	case "pub":
		ev = ClientRequest{Conn: conn(), ReqID: reqID(), Req: CreatePublisher{Topic: kv["topic"], Type: typ(), History: num("history", 0),
			MaxPayload: uint32(num("max_payload", 0)), MaxLoans: num("loans", 0), ExpectedSubscribers: num("expect", 0)}}
	case "sub":
		pol := DiscardOldest
		if kv["policy"] == "block" {
			pol = BlockProducer
		}
		ev = ClientRequest{Conn: conn(), ReqID: reqID(), Req: CreateSubscriber{
			Topic: kv["topic"], Type: typ(), QueueCapacity: num("cap", 0), History: num("history", 0), Policy: pol,
			MaxHeld: num("max_held", 0),
		}}
	case "closepub":
		ev = ClientRequest{Conn: conn(), ReqID: reqID(), Req: ClosePublisher{Pub: PubID(num("pub", 0))}}
	case "closesub":
		ev = ClientRequest{Conn: conn(), ReqID: reqID(), Req: CloseSubscriber{Sub: SubID(num("sub", 0))}}
	case "release":
		ev = ClientRequest{Conn: conn(), ReqID: reqID(), Req: ReleaseConnection{Connection: ConnectionID(num("conn", 0))}}
	case "adopt":
		var cs []ClientID
		for _, id := range ids("clients") {
			cs = append(cs, ClientID(id))
		}
		ev = AdoptClients{IDs: cs}
	case "resume":
		id := ClientID(num("client", 0))
		tok := s.tokens[id]
		switch kv["token"] {
		case "", "issued":
		case "wrong":
			tok[0] ^= 0xff
		default:
			t.Fatalf("%s: token=%q: want issued or wrong", where, kv["token"])
		}
		req := ResumeClient{OldClient: id, Token: tok}
		for _, p := range ids("pubs") {
			req.Pubs = append(req.Pubs, RestorePub{ID: PubID(p), Topic: kv["topic"], Type: typ()})
		}
		for _, sid := range ids("subs") {
			req.Subs = append(req.Subs, RestoreSub{ID: SubID(sid), Topic: kv["topic"], Type: typ(), Capacity: 16})
		}
		for v := range strings.SplitSeq(kv["links"], ",") { // ID/PUB/SUB
			if v == "" {
				continue
			}
			var lid, pub, sub uint64
			_, err := fmt.Sscanf(v, "%d/%d/%d", &lid, &pub, &sub)
			require.NoError(t, err, "%s: links=%s", where, v)
			req.Links = append(req.Links, RestoreLink{ID: ConnectionID(lid), Pub: PubID(pub), Sub: SubID(sub), Capacity: 16})
		}
		ev = ClientRequest{Conn: conn(), ReqID: reqID(), Req: req}
	case "restart":
		// The router dies; a new one adopts its segment: the ids of the
		// clients registered now are reserved, with the identities the
		// old one recorded at their Welcome.
		old := s.router()
		var adopt AdoptClients
		for _, c := range old.Snapshot().Clients {
			adopt.IDs = append(adopt.IDs, c.ID)
			if in, ok := s.idents[c.ID]; ok {
				adopt.Identities = append(adopt.Identities, in)
			}
		}
		s.r = nil
		r := s.router()
		r.Step(adopt)
		require.NoError(t, r.checkInvariants(), where)
		return append([]string{fmt.Sprintf("restarted: reserved %v", adopt.IDs)}, s.format(r.Ready())...)
	case "deadline":
		ev = ResumeDeadline{}
	case "report":
		ev = PeerReported{Conn: conn(), ReqID: reqID(), Connection: ConnectionID(num("conn", 0)),
			Ref: parallax.ChunkRef(num("ref", 0))}
	case "ringreport":
		ev = RingReported{Conn: conn(), ReqID: reqID(), Connection: ConnectionID(num("conn", 0))}
	case "disconnect":
		ev = ClientDisconnected{Conn: conn()}
	case "kill":
		ev = ProcessExited{PID: int32(num("pid", 0))}
	case "tick":
		r := s.router()
		var out []string
		for range num("n", 1) {
			r.Step(Tick{})
			require.NoError(t, r.checkInvariants(), where)
			out = append(out, s.format(r.Ready())...)
		}
		return out
	case "advance":
		ev = Tick{N: uint64(num("n", 1))}
	case "next-tick":
		if at, ok := s.router().NextTick(); ok {
			return []string{fmt.Sprintf("next-tick %d", at)}
		}
		return []string{"next-tick none"}
	case "snapshot":
		return strings.Split(s.router().Snapshot().String(), "\n")
	default:
		var (
			out []string
			ok  bool
		)
		if ev, out, ok = s.memoryCommand(cmd, kv, num); !ok && cmd == "watch" {
			ev, ok = ClientRequest{Conn: conn(), ReqID: reqID(), Req: WatchServices{}}, true // watch.go
		}
		if !ok {
			if ev, ok = growDataCommand(cmd, conn, reqID, num); !ok {
				t.Fatalf("%s: unknown command %q", where, cmd)
			}
		}
		if ev == nil {
			return out
		}
	}
	r := s.router()
	r.Step(ev)
	require.NoError(t, r.checkInvariants(), "%s: %s", where, line)
	return s.format(s.acknowledge(r.Ready(), where, line))
}

// acknowledge steps, unless the script acknowledges segment creations
// itself, a successful creation of every segment that actions ask for,
// and returns actions followed by what those steps emitted.
func (s *scriptState) acknowledge(actions []Action, where, line string) []Action {
	if s.manual {
		return actions
	}
	return ackSegments(s.r, actions, func() { require.NoError(s.t, s.r.checkInvariants(), "%s: %s", where, line) }) // core_test.go
}

// format formats actions and remembers the tokens and identities issued
// in Welcomes (for resume and restart).
func (s *scriptState) format(as []Action) []string {
	for _, a := range as {
		if rp, ok := a.(Reply); ok {
			if w, ok := rp.Result.(Welcome); ok {
				if s.tokens == nil {
					s.tokens, s.idents = map[ClientID]ResumeToken{}, map[ClientID]ClientIdentity{}
				}
				s.tokens[w.Client], s.idents[w.Client] = w.Token, w.Identity
			}
		}
	}
	return formatActions(as)
}

// countingReader is the scripts' deterministic source of resume tokens.
type countingReader struct{ n byte }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		c.n++
		p[i] = c.n
	}
	return len(p), nil
}

func formatActions(as []Action) []string {
	var out []string
	for _, a := range as {
		if l, ok := a.(Log); ok && l.Level < slog.LevelWarn {
			continue
		}
		out = append(out, a.String())
	}
	return out
}
