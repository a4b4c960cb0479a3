package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/parallax-ipc/parallax/internal/discovery"
)

func init() {
	register(&command{name: "top", short: "live view of topics (counters and rates, as publishers report them about once a second) and publisher memory; q or Ctrl-C quits",
		usage: "[-interval d] [-n iterations] [-plain]", flags: topFlags})
}

// ANSI escapes used by the full-terminal view.
const (
	ansiAltScreen  = "\x1b[?1049h"
	ansiMainScreen = "\x1b[?1049l"
	ansiHideCursor = "\x1b[?25l"
	ansiShowCursor = "\x1b[?25h"
	ansiHome       = "\x1b[H"
	ansiClearDown  = "\x1b[J"
	ansiClearLine  = "\x1b[K"
	ansiBold       = "\x1b[1m"
	ansiReset      = "\x1b[0m"
)

// topFlags declares top's flags. The command refreshes a view of the router every -interval. On a terminal it
// takes over the screen (alternate screen, raw keyboard) until q or Ctrl-C;
// otherwise, or with -plain, it prints one plain report per interval.
func topFlags(fs *flag.FlagSet) runFunc {
	interval := fs.Duration("interval", time.Second, "refresh interval")
	iterations := fs.Int("n", 0, "stop after this many refreshes (0: until q or Ctrl-C)")
	plain := fs.Bool("plain", false, "plain periodic output even on a terminal")
	return func(e *env, fs *flag.FlagSet, g *globals) int {
		const name = "top"
		if fs.NArg() != 0 {
			return failf(e, name, exitUsage, "unexpected argument %q", fs.Arg(0))
		}
		if *interval <= 0 || *iterations < 0 {
			return failf(e, name, exitUsage, "-interval must be positive and -n not negative")
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		c, err := dial(ctx, g)
		if err != nil {
			return routerError(e, name, g, err)
		}
		defer c.Close()

		out, isFile := e.stdout.(*os.File)
		in, inFile := e.stdin.(*os.File)
		if *plain || !isFile || !term.IsTerminal(int(out.Fd())) {
			return topPlain(ctx, e, g, c, *interval, *iterations)
		}
		var keys <-chan byte
		if inFile && term.IsTerminal(int(in.Fd())) {
			old, err := term.MakeRaw(int(in.Fd()))
			if err == nil {
				defer func() { _ = term.Restore(int(in.Fd()), old) }()
				keys = readKeys(in)
			}
		}
		fmt.Fprint(out, ansiAltScreen+ansiHideCursor)
		defer fmt.Fprint(out, ansiShowCursor+ansiMainScreen)
		tick := time.NewTicker(*interval)
		defer tick.Stop()
		var r rater
		for i := 0; *iterations == 0 || i < *iterations; i++ {
			v, err := fetch(ctx, c, wantTopics|wantPublishers)
			if err != nil {
				fmt.Fprint(out, ansiShowCursor+ansiMainScreen)
				return routerError(e, name, g, err)
			}
			w, h, err := term.GetSize(int(out.Fd()))
			if err != nil {
				w, h = 120, 40
			}
			fmt.Fprint(out, ansiHome+fitScreen(topFrame(v, r.next(v), *interval, true), w, h)+ansiClearDown)
			select {
			case <-tick.C:
			case k := <-keys:
				if k == 'q' || k == 'Q' || k == 3 || k == 4 {
					return exitOK
				}
			case <-ctx.Done():
				return exitOK
			case <-c.Done():
				fmt.Fprint(out, ansiShowCursor+ansiMainScreen)
				return routerError(e, name, g, c.Err())
			}
		}
		return exitOK
	}
}

// topPlain prints a report per interval, for pipes and logs.
func topPlain(ctx context.Context, e *env, g *globals, c *discovery.Client, interval time.Duration, iterations int) int {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var r rater
	for i := 0; iterations == 0 || i < iterations; i++ {
		if i > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return exitOK
			}
			fmt.Fprintln(e.stdout)
		}
		v, err := fetch(ctx, c, wantTopics|wantPublishers)
		if err != nil {
			return routerError(e, "top", g, err)
		}
		_, _ = io.WriteString(e.stdout, topFrame(v, r.next(v), interval, false))
	}
	return exitOK
}

// rater remembers top's previous refresh to compute rates.
type rater struct {
	prev *view
	at   time.Time
}

// next returns the rates from the previous refresh to v and remembers v.
func (r *rater) next(v *view) map[string]topicRates {
	now := time.Now()
	rates := ratesBetween(r.prev, v, now.Sub(r.at))
	r.prev, r.at = v, now
	return rates
}

// topFrame renders one refresh: the router line, the topics with their
// rates since the previous refresh, and publisher memory.
func topFrame(v *view, rates map[string]topicRates, interval time.Duration, ansi bool) string {
	var b bytes.Buffer
	bold, reset := "", ""
	if ansi {
		bold, reset = ansiBold, ansiReset
	}
	fmt.Fprintf(&b, "%sparallax top%s  %s  every %v  (q quits)\n", bold, reset, time.Now().Format("15:04:05"), interval)
	routerLine(&b, v.Router)
	b.WriteString("\n")
	if len(v.Topics) == 0 {
		b.WriteString("no topics\n")
	} else {
		topicsRateTable(&b, v, rates)
	}
	b.WriteString("\n")
	poolsTable(&b, v)
	return b.String()
}

// fitScreen cuts a frame to the terminal's width and height and ends every
// line with "clear to end of line" and CRLF (the terminal is in raw mode).
func fitScreen(frame string, w, h int) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(frame))
	for n := 0; sc.Scan() && n < h-1; n++ {
		line := sc.Text()
		if w > 0 && len(line) > w {
			line = line[:w]
		}
		b.WriteString(line + ansiClearLine + "\r\n")
	}
	return b.String()
}

// readKeys delivers the bytes typed on in. Its goroutine ends when in
// reaches EOF or fails (at the latest when the process exits).
func readKeys(in io.Reader) <-chan byte {
	ch := make(chan byte, 16)
	go func() {
		buf := make([]byte, 16)
		for {
			n, err := in.Read(buf)
			for _, k := range buf[:n] {
				select {
				case ch <- k:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}
