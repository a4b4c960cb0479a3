//go:build integration

package integration

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/rpc"
)

// TestRPCServerDiesWithoutRouter: the router is SIGKILLed first, then the
// server process while calls are pending on it, so no router sees the
// server die. The client's pending calls fail with ErrServerGone (not at
// their one-minute deadline) once a successor router has adopted the
// domain and its resume grace for the dead server ended; so does a call
// another client made while no router ran. Both clients' request memory
// is all back and they are the successor's only clients.
func TestRPCServerDiesWithoutRouter(t *testing.T) {
	dir, sock, domain, r1 := startRestartableRouter(t, "rsorph", ownedConfig)
	srv := spawn(t, "rpc server", "rpcserve", "-socket", sock, "-service=orph")
	srv.expect("ready")
	const pending = 3
	cl := spawn(t, "rpc client", "rpccall", "-socket", sock, "-service=orph", "-n=20", "-g=2", "-pending=3")
	cl.expect("echoed")
	cl.expect("pending")
	late := spawn(t, "rpc client calling later", "rpcloop", "-socket", sock, "-service=orph")
	late.expect("ready")
	srv.expect("held 3") // every pending call reached the server

	killRouter(t, r1)
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGKILL)) // our own child, by PID
	require.Error(t, srv.waitErr(), "the server was killed")
	killed := time.Now()
	// A call made now, while no router runs, goes to the dead server too
	// (the client cannot tell it died): it must fail the same way.
	late.send("call 1")

	router, ctx := startSuccessorWith(t, ownedConfig, domain, sock, dir, 2*time.Second)
	require.True(t, router.Adopted())
	for range pending {
		f := cl.expect("failed ")
		require.Equal(t, "servergone", f[0], "a pending call on the dead server: %v", f)
	}
	t.Logf("pending calls failed %v after the server's kill", time.Since(killed))
	f := late.expect("call")
	require.NotEmpty(t, f, "the late call")
	require.Equal(t, "fail", f[0], "the late call on the dead server: %v", f)
	require.Contains(t, strings.Join(f[1:], " "), rpc.ErrServerGone.Error(), "the late call on the dead server")
	late.send("mem")
	require.Equal(t, []string{"0", "0", "0", "0"}, late.expect("mem "), "the late client's memory (in use, loans, outstanding) and servers")
	require.Equal(t, []string{"0", "0", "0"}, cl.expect("mem "), "the client's request memory: in use, loans, outstanding")
	require.True(t, waitSnapshot(ctx, router, func(s roudi.Snapshot) bool { return len(s.Clients) == 2 }),
		"the successor does not have exactly the two clients")
	late.wait()
	cl.wait()
}

// TestRPCClientDiesWithoutRouter: the router is SIGKILLed first, then a
// client process whose streams' responses sit unread in its queue, so no
// router sees the client die. Once a successor router adopted the domain
// and its resume grace for the dead client ended, the server has every
// response chunk back and no client; a new client is served.
func TestRPCClientDiesWithoutRouter(t *testing.T) {
	dir, sock, domain, r1 := startRestartableRouter(t, "rsorphc", ownedConfig)
	srv := spawn(t, "rpc server", "rpcserve", "-socket", sock, "-service=orphc")
	srv.expect("ready")
	victim := spawn(t, "victim client", "rpccall", "-socket", sock, "-service=orphc", "-n=20", "-g=2", "-streams=3")
	victim.expect("echoed")
	victim.expect("streamed")
	eventually(t, "the server delivers the streams", func() (bool, string) {
		m := srv.serverMem(t)
		return m.Outstanding > 0 && m.Clients == 1, fmt.Sprintf("%+v", m)
	})

	killRouter(t, r1)
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL)) // our own child, by PID
	require.Error(t, victim.waitErr(), "the victim was killed")

	router, _ := startSuccessorWith(t, ownedConfig, domain, sock, dir, 2*time.Second)
	require.True(t, router.Adopted())
	eventually(t, "the server takes the dead client's responses back", func() (bool, string) {
		m := srv.serverMem(t)
		return m.Clients == 0 && m.InUse == 0 && m.Outstanding == 0, fmt.Sprintf("%+v", m)
	})
	other := spawn(t, "other client", "rpccall", "-socket", sock, "-service=orphc", "-n=20", "-g=2", "-pending=0")
	other.expect("echoed")
	require.Equal(t, []string{"0", "0", "0"}, other.expect("mem "))
	other.wait()
	m := srv.serverMem(t)
	require.Zero(t, m.InUse, "%+v", m)
}

// TestRouterRestartFreshIDs: a publisher process that dies while no router
// runs never resumes; the successor (which adopted the survivors) must not
// give its id to a new publisher, since survivors may still know it (an
// rpc server's record of gone clients is keyed by it: the flaky
// "client gone" for a new client that TestRPCClientDiesWithoutRouter met
// before the fix). On main the new publisher got the dead one's id.
func TestRouterRestartFreshIDs(t *testing.T) {
	dir, sock, domain, r1 := startRestartableRouter(t, "rsids", ownedConfig)
	survivor := spawn(t, "surviving subscriber", "kwsub", "-socket", sock, "-topic=ids")
	survivor.expect("ready")
	victim := spawn(t, "victim publisher", "kwpub", "-socket", sock, "-topic=ids")
	dead := atoi(t, victim.expect("ready ")[0])
	survivor.cmdLine("pubs 1", "pubs")

	killRouter(t, r1)
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL)) // our own child, by PID
	require.Error(t, victim.waitErr(), "the victim was killed")
	router, ctx := startSuccessorWith(t, ownedConfig, domain, sock, dir, time.Second)
	require.True(t, router.Adopted())
	// The grace ended: only the survivor is left, and it lost the victim.
	require.True(t, waitSnapshot(ctx, router, func(s roudi.Snapshot) bool { return len(s.Clients) == 1 && len(s.Connections) == 0 }),
		"the successor did not drop the victim")
	survivor.cmdLine("pubs 0", "pubs")

	fresh := spawn(t, "new publisher", "kwpub", "-socket", sock, "-topic=ids")
	id := atoi(t, fresh.expect("ready ")[0])
	require.Greater(t, id, dead, "the new publisher reuses the id of one that died while no router ran")
	survivor.cmdLine("pubs 1", "pubs")
	fresh.wait()
	survivor.wait()
}
