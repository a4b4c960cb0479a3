package roudi

import (
	"errors"
	"os"

	"github.com/parallax-ipc/parallax/internal/discovery"
)

// Outgoing queues: the router never blocks on a client.
//
// Every accepted connection gets a bounded outgoing queue and one writer
// goroutine (discovery.ServerConn.StartWriter). The Serve goroutine, and a
// connection's read goroutine when it refuses a request, only encode and
// queue; the writer does the blocking socket writes, in the order the
// messages were queued, so replies and pushes reach each client in the
// order the core emitted them.
//
// A client whose queue overflows, or that lets one write make no progress
// for [sendTimeout], is cut: its socket is closed, its read goroutine sees
// the end of the connection and reports it like any departure (the core
// then disconnects and reclaims it), GuardStats.StalledDisconnects counts
// it and one warning is logged. This cut is decided here, not in the router
// core: it is flow control of one socket (the writer sees the overflow or
// the stalled write), not a registry decision, and the core learns of it
// as of any other departure (core.ClientDisconnected).
//
// Order across clients is the order of queueing, not of delivery: a
// ConnectionAdded queued for the subscriber's client before the
// publisher's may be read after it. Nothing depends on that delivery order
// (nor did it before: each client reads its socket when it likes). The
// ring and the subscriber's notifier are formatted before either message
// is queued, so a publisher that pushes (or replays history) before the
// subscriber has attached the ring leaves the samples queued in it, and
// the subscriber takes them once attached.
//
// Lifetimes: the writer is owned by the connection's ServerConn. dropConn
// asks it to flush and close (CloseWhenFlushed, bounded by one
// sendTimeout), so a reply queued before a CloseConn still reaches the
// client; the connection's goroutine in acceptLoop waits for the writer to
// exit after its read loop ends, so Serve returns only after every writer
// has exited and closed the duplicate fds of what it did not write.

// queueOptions bounds a client's outgoing queue. One core step can push a
// client one message per connection it takes part in (ConnectionRemoved to
// every peer of a departed client), so the count bound leaves room for two
// such steps; the byte bound allows that many small pushes (well under
// 128 bytes each) and several introspection replies (64 KiB at most). A
// service watcher's snapshot is one push per topic (server_watch.go): the
// bounds also leave room for two of those.
func (s *Server) queueOptions(sc *discovery.ServerConn) discovery.QueueOptions {
	pid := sc.Cred.PID
	return discovery.QueueOptions{
		MaxMessages:  max(discovery.DefaultQueueMessages, 2*s.cfg.Limits.MaxConnections+256, 2*s.cfg.Limits.MaxTopics+256),
		MaxBytes:     max(discovery.DefaultQueueBytes, 2*s.cfg.Limits.MaxConnections*128, 2*s.cfg.Limits.MaxTopics*256),
		WriteTimeout: sendTimeout,
		OnStall: func(err error) {
			s.guard.stalled.Add(1)
			s.log.Warn("disconnecting a client that does not read its control socket", "pid", pid, "err", err)
		},
	}
}

// sendFailed reports whether a failed send needs handling by the caller:
// not when the connection was cut or closed (its read goroutine reports the
// departure, and a cut was logged when it happened).
func sendFailed(err error) bool {
	return err != nil && !errors.Is(err, os.ErrClosed) && !errors.Is(err, discovery.ErrQueueFull)
}
