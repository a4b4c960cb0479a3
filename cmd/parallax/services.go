package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"

	"github.com/parallax-ipc/parallax/services"
)

func init() {
	register(&command{name: "services", short: "list the router's services (topics, request/response and event services) with their endpoints and your access, or watch them change",
		usage: "[-json] [-watch]", flags: servicesFlags})
}

func servicesFlags(fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, "print JSON (with -watch: one JSON object per line)")
	watch := fs.Bool("watch", false, "print the services, then every change as it happens, until interrupted")
	return func(e *env, fs *flag.FlagSet, g *globals) int {
		const name = "services"
		if fs.NArg() != 0 {
			return failf(e, name, exitUsage, "unexpected argument %q", fs.Arg(0))
		}
		path, domain, err := g.target()
		if err != nil {
			return routerError(e, name, g, err)
		}
		opts := services.Options{Socket: path, Domain: domain, Name: "parallax-cli"}
		if *watch {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return watchServices(ctx, e, g, opts, *asJSON)
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		list, err := services.List(ctx, opts)
		if err != nil {
			return routerError(e, name, g, err)
		}
		if *asJSON {
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			if list == nil {
				list = []services.Service{}
			}
			if err := enc.Encode(list); err != nil {
				return failf(e, name, exitFailure, "%v", err)
			}
			return exitOK
		}
		servicesTable(e.stdout, list)
		return exitOK
	}
}

// watchServices prints events until ctx ends (an interrupt): exit 0.
func watchServices(ctx context.Context, e *env, g *globals, opts services.Options, asJSON bool) int {
	w, err := services.Watch(ctx, opts)
	if err != nil {
		return routerError(e, "services", g, err)
	}
	defer w.Close()
	enc := json.NewEncoder(e.stdout)
	for ev := range w.Events() {
		if asJSON {
			err = enc.Encode(ev)
		} else {
			_, err = fmt.Fprintln(e.stdout, eventLine(ev))
		}
		if err != nil {
			return failf(e, "services", exitFailure, "%v", err)
		}
	}
	if ctx.Err() != nil {
		return exitOK
	}
	return failf(e, "services", exitFailure, "%v", w.Err())
}

func servicesTable(w io.Writer, list []services.Service) {
	tw := newTable(w)
	row(tw, "SERVICE", "KIND", "TYPE", "ACCESS", "PUBLISHERS", "SUBSCRIBERS")
	for _, s := range list {
		pubs, subs := sides(s)
		row(tw, s.Name, s.Kind, types(s), access(s), pubs, subs)
	}
	tw.Flush()
}

// eventLine is one line of `services -watch`.
func eventLine(ev services.Event) string {
	s := ev.Service
	pubs, subs := sides(s)
	switch s.Kind {
	case services.KindRequestResponse:
		return fmt.Sprintf("%-11s %s %s type=%s access=%s clients=%s servers=%s", ev.Kind, s.Kind, s.Name, types(s), access(s), pubs, subs)
	case services.KindEvent:
		return fmt.Sprintf("%-11s %s %s type=%s access=%s notifiers=%s listeners=%s", ev.Kind, s.Kind, s.Name, types(s), access(s), pubs, subs)
	}
	return fmt.Sprintf("%-11s %s %s type=%s access=%s pubs=%s subs=%s", ev.Kind, s.Kind, s.Name, types(s), access(s), pubs, subs)
}

// types is a topic's type, or a request/response service's
// "request->response".
func types(s services.Service) string {
	if s.Kind == services.KindRequestResponse {
		return serviceType(s.Type) + "->" + serviceType(s.ResponseType)
	}
	return serviceType(s.Type)
}

// sides lists the publishers and subscribers, or for a request/response
// service its clients and servers with their count ("2 clients: a[1],b[2]"),
// for an event service its notifiers and listeners.
func sides(s services.Service) (pubs, subs string) {
	pw, sw := "client", "server"
	switch s.Kind {
	case services.KindRequestResponse:
	case services.KindEvent:
		pw, sw = "notifier", "listener"
	default:
		return endpoints(s.Publishers, false), endpoints(s.Subscribers, true)
	}
	count := func(es []services.Endpoint, what string) string {
		if len(es) == 0 {
			return "0 " + what + "s"
		}
		n := fmt.Sprintf("%d %s", len(es), what)
		if len(es) > 1 {
			n += "s"
		}
		return n + ": " + endpoints(es, false)
	}
	return count(s.Publishers, pw), count(s.Subscribers, sw)
}

func serviceType(t services.Type) string {
	if t.Name == "" && t.Size == 0 {
		return "bytes"
	}
	return t.String()
}

// access is "pub,sub", "pub", "sub" or "none" (for a request/response
// service "call,serve", "call", "serve" or "none", for an event service
// "notify,listen", ...): what the caller may do.
func access(s services.Service) string {
	pub, sub := "pub", "sub"
	switch s.Kind {
	case services.KindRequestResponse:
		pub, sub = "call", "serve"
	case services.KindEvent:
		pub, sub = "notify", "listen"
	}
	var a []string
	if s.CanPublish {
		a = append(a, pub)
	}
	if s.CanSubscribe {
		a = append(a, sub)
	}
	if len(a) == 0 {
		return "none"
	}
	return strings.Join(a, ",")
}

// endpoints lists endpoints as name[pid] (subscribers with their queue:
// name[pid]:capacity/policy), or "-".
func endpoints(es []services.Endpoint, sub bool) string {
	if len(es) == 0 {
		return "-"
	}
	parts := make([]string, len(es))
	for i, ep := range es {
		parts[i] = fmt.Sprintf("%s[%d]", ep.Process, ep.PID)
		if sub {
			parts[i] += fmt.Sprintf(":%d/%s", ep.QueueCapacity, ep.Policy)
		}
	}
	return strings.Join(parts, ",")
}
