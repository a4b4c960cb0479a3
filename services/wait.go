package services

import (
	"context"
	"fmt"
)

// WaitFor blocks until the service named name exists and satisfies cond
// (nil means any state), and returns that state. It watches the router's
// pushes ([Watch]); nothing is polled. It returns the context's error when
// ctx ends first, and an error wrapping [parallax.ErrDaemonUnavailable]
// when no router runs at the start. A router restart while waiting is
// survived.
func WaitFor(ctx context.Context, opts Options, name string, cond func(Service) bool) (Service, error) {
	w, err := Watch(ctx, opts)
	if err != nil {
		return Service{}, err
	}
	defer w.Close()
	for ev := range w.Events() {
		if ev.Kind == Disappeared || ev.Service.Name != name {
			continue
		}
		if cond == nil || cond(ev.Service) {
			return ev.Service, nil
		}
	}
	if err := w.Err(); err != nil {
		return Service{}, fmt.Errorf("wait for service %q: %w", name, err)
	}
	return Service{}, fmt.Errorf("wait for service %q: %w", name, ctx.Err())
}

// WaitForPublisher blocks until topic has at least one publisher, and
// returns the topic's state then. See [WaitFor].
func WaitForPublisher(ctx context.Context, opts Options, topic string) (Service, error) {
	return WaitFor(ctx, opts, topic, func(s Service) bool { return len(s.Publishers) > 0 })
}

// WaitForSubscriber blocks until topic has at least one subscriber, and
// returns the topic's state then. See [WaitFor].
func WaitForSubscriber(ctx context.Context, opts Options, topic string) (Service, error) {
	return WaitFor(ctx, opts, topic, func(s Service) bool { return len(s.Subscribers) > 0 })
}

// List returns the router's services now, sorted by name. It fails with an
// error wrapping [parallax.ErrDaemonUnavailable] when no router runs.
func List(ctx context.Context, opts Options) ([]Service, error) {
	w, err := Watch(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	return w.Services(), nil
}
