package clientrt

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Closes that race a resume. A resume re-registers the endpoints of a
// snapshot taken under mu; an endpoint may close between that snapshot
// and the switch to the new connection. Its close request then goes to the
// dead router (or finds none) and counts as done, while the restarted
// router re-registered it from the snapshot: without more, it would keep a
// closed subscriber (holding its block-producer publishers back) or
// publisher until the process exits. So during a resume the runtime
// remembers which connection each close went to, and after the switch it
// closes at the new router every snapshot endpoint that is gone and whose
// close did not go there itself; one whose close comes later still finds
// it marked and sends nothing. Each endpoint is closed at the new router
// exactly once.

// endpointKey names a publisher (pub) or subscriber of this runtime.
type endpointKey struct {
	pub bool
	id  uint32
}

// resumeCloses is the state of closes during a resume. mu guards it.
type resumeCloses struct {
	// sent holds the closes started during a resume (non-nil from the
	// snapshot to closeResumedGone), by the connection each went to.
	sent map[endpointKey]*discovery.Client
	done map[endpointKey]bool // closed by the resume: the endpoint's own close sends nothing
	// unreg holds the endpoints unregistered whose close has not started,
	// before those of them the snapshot left out (unknown to the new
	// router): their close, if it comes after the switch, is not sent to
	// a router that never knew them ("no such subscriber").
	unreg, before map[endpointKey]bool
}

// beginResumeCloses starts recording closes (at the snapshot). mu held.
func (rt *Runtime) beginResumeCloses() {
	rt.rcl.sent = map[endpointKey]*discovery.Client{}
	rt.rcl.before = make(map[endpointKey]bool, len(rt.rcl.unreg))
	for k := range rt.rcl.unreg {
		rt.rcl.before[k] = true
	}
}

// unregistered records that endpoint (pub, id) left the registry and its
// close will follow ([Runtime.StartClose]). mu held.
func (rt *Runtime) unregistered(pub bool, id uint32) {
	if rt.rcl.unreg == nil {
		rt.rcl.unreg = map[endpointKey]bool{}
	}
	rt.rcl.unreg[endpointKey{pub, id}] = true
}

// endResumeCloses stops recording closes (a resume that failed). mu held.
func (rt *Runtime) endResumeCloses() { rt.rcl.sent, rt.rcl.before = nil, nil }

// StartClose sends the close request m of this runtime's publisher (pub)
// or subscriber id, after its Unregister, as [Runtime.Start] does, except
// that during a router restart it goes to the connection the runtime uses
// at the call, and it is not sent at all (nil Call, nil error: done) when
// the resume closed the endpoint already (see resumeCloses).
func (rt *Runtime) StartClose(pub bool, id uint32, m wire.Message) (*discovery.Call, error) {
	k := endpointKey{pub, id}
	rt.mu.Lock()
	delete(rt.rcl.unreg, k)
	if rt.rcl.done[k] {
		delete(rt.rcl.done, k)
		rt.mu.Unlock()
		return nil, nil
	}
	c := rt.client.cur.Load()
	if rt.rcl.sent != nil { // a resume runs
		rt.rcl.sent[k] = c
	}
	rt.mu.Unlock()
	return c.Start(m, nil)
}

// closeResumedGone closes, at the router behind nc (just switched to),
// the endpoints of the resume m that closed since its snapshot and whose
// close did not go to nc.
func (rt *Runtime) closeResumedGone(nc *discovery.Client, m *wire.Resume) {
	var gone []wire.Message
	rt.mu.Lock()
	mark := func(k endpointKey, msg wire.Message) {
		c, sent := rt.rcl.sent[k]
		if c == nc {
			return // its own close went to the new router
		}
		if !sent {
			rt.markClosedByResume(k) // its close has not started: it sends nothing
		}
		gone = append(gone, msg)
	}
	for _, p := range m.Publishers {
		if _, ok := rt.pubs[p.PubID]; !ok {
			mark(endpointKey{true, p.PubID}, &wire.ClosePublisher{PubID: p.PubID})
		}
	}
	for _, s := range m.Subscribers {
		if _, ok := rt.subs[s.SubID]; !ok {
			mark(endpointKey{false, s.SubID}, &wire.CloseSubscriber{SubID: s.SubID})
		}
	}
	// Unregistered before the snapshot, close not started yet: the new
	// router never knew them, so their close sends nothing.
	for k := range rt.rcl.before {
		if rt.rcl.unreg[k] {
			rt.markClosedByResume(k)
		}
	}
	rt.endResumeCloses()
	rt.mu.Unlock()
	for _, msg := range gone {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _, err := nc.Request(ctx, msg, nil)
		cancel()
		if err != nil {
			slog.Debug("parallax: resume: cannot close an endpoint closed during the resume", "msg", fmt.Sprintf("%T", msg), "err", err)
		}
	}
}

// markClosedByResume makes endpoint k's own close send nothing. mu held.
func (rt *Runtime) markClosedByResume(k endpointKey) {
	if rt.rcl.done == nil {
		rt.rcl.done = map[endpointKey]bool{}
	}
	rt.rcl.done[k] = true
}
