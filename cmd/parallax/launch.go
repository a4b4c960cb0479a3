package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
	"github.com/parallax-ipc/parallax/plugin"
)

func init() {
	register(&command{name: "launch", short: "build and run a pipeline from a gst-launch-like description",
		usage: "[flags] <pipeline>   (e.g. \"testsrc num-buffers=1000 size=64KiB ! ipcsink topic=v\")",
		flags: launchFlags})
}

// loadPluginsOnce loads $PARALLAX_PLUGIN_PATH into the default registry
// once per process and warns on stderr about plugins that failed.
var loadPluginsOnce sync.Once

func loadPlugins(e *env) {
	loadPluginsOnce.Do(func() {
		if _, err := plugin.LoadEnv(nil); err != nil {
			fmt.Fprintf(e.stderr, "parallax: warning: %v\n", err)
		}
	})
}

// launchFlags declares launch's flags. The command runs a pipeline until end of stream, an element's error or
// Ctrl-C. On a terminal it shows progress (buffers, bytes, rate) on stderr;
// -v prints every event on stdout. At the end it prints what elements
// reported (checksums, ipcsink copy counters) and a summary line.
func launchFlags(fs *flag.FlagSet) runFunc {
	verbose := fs.Bool("v", false, "print pipeline events")
	progress := fs.String("progress", "auto", "progress line on stderr: auto (on a terminal), always, never")
	return func(e *env, fs *flag.FlagSet, g *globals) int {
		const name = "launch"
		line := strings.TrimSpace(strings.Join(fs.Args(), " "))
		if line == "" {
			return failf(e, name, exitUsage, "no pipeline given (e.g. parallax launch \"testsrc num-buffers=100 ! fakesink\")")
		}
		showProgress := false
		switch *progress {
		case "always":
			showProgress = true
		case "never":
		case "auto":
			f, ok := e.stderr.(*os.File)
			showProgress = ok && term.IsTerminal(int(f.Fd()))
		default:
			return failf(e, name, exitUsage, "-progress must be auto, always or never, not %q", *progress)
		}
		loadPlugins(e)
		gr, err := pipeline.Launch(line, nil)
		if err != nil {
			var se *pipeline.SyntaxError
			if errors.As(err, &se) {
				fmt.Fprintf(e.stderr, "parallax launch: %v\n%s\n", err, indent(se.Caret()))
			} else {
				fmt.Fprintf(e.stderr, "parallax launch: %v\n", err)
			}
			return exitUsage
		}
		applyRouter(gr, g)
		p, err := pipeline.New(gr, pipeline.Options{})
		if err != nil {
			return failf(e, name, exitUsage, "%v", err)
		}

		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		lis := p.Events(4096)
		var reports []string
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range lis.C {
				if *verbose {
					fmt.Fprintln(e.stdout, ev.String())
				}
				if ev.Kind == pipeline.EventCustom {
					reports = append(reports, fmt.Sprintf("%s: %s %v", ev.Node, ev.Name, ev.Value))
				}
			}
		}()
		began := time.Now()
		sinks := sinkNodes(gr)
		if err := p.Start(ctx); err != nil {
			wg.Wait()
			return launchError(e, g, err)
		}
		var werr error
		if showProgress {
			werr = waitWithProgress(e.stderr, p, sinks, began)
		} else {
			werr = p.Wait()
		}
		wg.Wait()
		elapsed := time.Since(began)
		for _, r := range reports {
			fmt.Fprintln(e.stdout, r)
		}
		buffers, bytes := totals(p, sinks)
		interrupted := ctx.Err() != nil && (werr == nil || errors.Is(werr, context.Canceled))
		fmt.Fprintf(e.stdout, "%s: %d buffers, %s in %s (%s)\n", map[bool]string{true: "interrupted", false: "done"}[interrupted],
			buffers, humanBytes(bytes), elapsed.Round(time.Millisecond), launchRate(buffers, bytes, elapsed))
		if lost := lis.Lost(); lost > 0 && *verbose {
			fmt.Fprintf(e.stderr, "parallax launch: %d events lost (listener too slow)\n", lost)
		}
		if werr != nil && !interrupted {
			return launchError(e, g, werr)
		}
		return exitOK
	}
}

// applyRouter points ipc elements without their own router at the one the
// global -domain/-socket flags name.
func applyRouter(gr *pipeline.Graph, g *globals) {
	for _, n := range gr.Nodes() {
		switch el := gr.Element(n).(type) {
		case *elements.IPCSink:
			if el.Domain == "" && el.Socket == "" {
				el.Domain, el.Socket = g.domain, g.socket
			}
		case *elements.IPCSrc:
			if el.Domain == "" && el.Socket == "" {
				el.Domain, el.Socket = g.domain, g.socket
			}
		}
	}
}

// launchError reports a pipeline failure: exitNoRouter when an ipc element
// found no router, else exitFailure naming the node.
func launchError(e *env, g *globals, err error) int {
	if errors.Is(err, parallax.ErrDaemonUnavailable) {
		return routerError(e, "launch", g, err)
	}
	return failf(e, "launch", exitFailure, "%v", err)
}

// sinkNodes returns the nodes without outgoing links: their counts are what
// the pipeline delivered.
func sinkNodes(gr *pipeline.Graph) map[string]bool {
	out := map[string]bool{}
	for _, l := range gr.Links() {
		out[l.From] = true
	}
	sinks := map[string]bool{}
	for _, n := range gr.Nodes() {
		if !out[n] {
			sinks[n] = true
		}
	}
	return sinks
}

func totals(p *pipeline.Pipeline, sinks map[string]bool) (buffers, bytes uint64) {
	for _, s := range p.Stats() {
		if sinks[s.Name] {
			buffers += s.Buffers
			bytes += s.Bytes
		}
	}
	return buffers, bytes
}

// waitWithProgress waits for p, redrawing one progress line on w.
func waitWithProgress(w io.Writer, p *pipeline.Pipeline, sinks map[string]bool, began time.Time) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var lastB, lastN uint64
	last := began
	for {
		select {
		case <-p.Done():
			fmt.Fprint(w, "\r\x1b[K")
			return p.Wait()
		case now := <-tick.C:
			n, b := totals(p, sinks)
			dt := now.Sub(last)
			fmt.Fprintf(w, "\r\x1b[K%d buffers  %s  %s", n, humanBytes(b), launchRate(n-lastN, b-lastB, dt))
			lastN, lastB, last = n, b, now
		}
	}
}

func launchRate(buffers, bytes uint64, d time.Duration) string {
	s := d.Seconds()
	if s <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f buffers/s, %s/s", float64(buffers)/s, humanBytes(uint64(float64(bytes)/s)))
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for x := n / unit; x >= unit; x /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }
