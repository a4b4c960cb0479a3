package roudi

import (
	"context"
	"fmt"
	"log/slog"
	"os"
)

// Start creates a router for cfg (the embedded default when nil) as [New]
// does, serves it on a goroutine the returned [Server] owns, and returns
// once the router accepts clients. When serving fails before that (another
// router listens on the socket: an error wrapping
// discovery.ErrRouterRunning; the socket directory cannot be created) or
// ctx ends first, Start releases everything and returns the error.
//
// ctx bounds the start only, as it does for net.Dialer.DialContext: once
// Start returned, the router serves until [Server.Close], which stops it
// (every client is told), waits for the serving goroutine and releases the
// segments, so a started router needs nothing but defer srv.Close().
// Programs that want to drive the loop themselves use New and
// [Server.Serve] instead.
func Start(ctx context.Context, cfg *Config, opts Options) (_ *Server, err error) {
	s, err := New(cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		s.Close()
		return nil, fmt.Errorf("start router for domain %q: %w", s.cfg.Domain, err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop, s.served = cancel, make(chan struct{})
	go func() {
		defer close(s.served)
		s.serveErr = s.Serve(sctx)
	}()
	select {
	case <-s.ready:
		return s, nil
	case <-s.served:
		err = s.serveErr
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.Close()
	return nil, fmt.Errorf("start router for domain %q: %w", s.cfg.Domain, err)
}

// stopServing cancels the goroutine Start runs Serve on and waits for it,
// returning Serve's error. It does nothing for a server made by New.
func (s *Server) stopServing() error {
	if s.stop == nil {
		return nil
	}
	s.stop()
	<-s.served
	return s.serveErr
}

// newLogger returns the logger a server uses when Options.Logger is nil:
// text on standard error at the configuration's LogLevel.
func newLogger(cfg *Config) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.SlogLevel()}))
}
