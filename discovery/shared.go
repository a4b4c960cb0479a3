package discovery

import (
	"context"
	"sync"
)

// sharedClients holds the process-wide clients of [Shared], one per socket
// path.
var sharedClients struct {
	mu sync.Mutex
	m  map[string]*sharedEntry
}

type sharedEntry struct {
	c    *Client
	refs int // guarded by sharedClients.mu
}

// SharedClient is a reference to the process-wide [Client] of one router.
// Use [Shared]; the zero value is invalid. It is safe for concurrent use.
// Release (or Close) drops the reference; the last one closes the client.
type SharedClient struct {
	*Client
	entry *sharedEntry
	path  string
	once  sync.Once
}

// Shared returns a reference to this process's one client of the router
// that opts resolves to (by socket path), dialing it on first use, so all
// publishers and subscribers of a process share one control connection. A
// client that stopped (router gone) is replaced by a fresh dial. Options
// other than the socket path are taken from the call that dialed.
func Shared(ctx context.Context, opts DialOptions) (*SharedClient, error) {
	_, path, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	opts.Socket = path
	sharedClients.mu.Lock()
	defer sharedClients.mu.Unlock()
	e := sharedClients.m[path]
	if e != nil && e.c.Err() != nil {
		e = nil // stopped: later dials get a new client, old refs release the old one
	}
	if e == nil {
		c, err := Dial(ctx, opts)
		if err != nil {
			return nil, err
		}
		e = &sharedEntry{c: c}
		if sharedClients.m == nil {
			sharedClients.m = make(map[string]*sharedEntry)
		}
		sharedClients.m[path] = e
	}
	e.refs++
	return &SharedClient{Client: e.c, entry: e, path: path}, nil
}

// Release drops this reference; the last reference closes the client.
// Further calls do nothing.
func (s *SharedClient) Release() {
	s.once.Do(func() {
		sharedClients.mu.Lock()
		s.entry.refs--
		last := s.entry.refs == 0
		if last && sharedClients.m[s.path] == s.entry {
			delete(sharedClients.m, s.path)
		}
		sharedClients.mu.Unlock()
		if last {
			s.entry.c.Close()
		}
	})
}

// Close is Release; it returns nil.
func (s *SharedClient) Close() error {
	s.Release()
	return nil
}
