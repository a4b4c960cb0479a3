package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
)

// A command is one `parallax <name>` subcommand. Each lives in its own file
// and registers itself in an init function with register.
type command struct {
	name  string
	short string // one line for `parallax help`
	usage string // argument synopsis, e.g. "[flags] <topic>"
	// run parses its own flags from args (fs is pre-populated with the
	// global -domain/-socket flags bound to g) and returns an exit code.
	run func(env *env, fs *flag.FlagSet, g *globals, args []string) int
}

// env is the process environment a command runs in (swappable in tests).
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// globals are the flags every router-facing command accepts.
type globals struct {
	domain string
	socket string
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("parallax: duplicate command " + c.name)
	}
	commands[c.name] = c
}

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1 // the command ran and failed
	exitUsage    = 2 // bad flags or arguments
	exitNoRouter = 3 // no router serves the domain
)

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		if len(args) > 1 {
			if c := commands[args[1]]; c != nil {
				fs, _ := newFlagSet(e, c)
				fs.Usage()
				return exitOK
			}
		}
		usage(e.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c := commands[args[0]]
	if c == nil {
		fmt.Fprintf(e.stderr, "parallax: unknown command %q (run 'parallax help')\n", args[0])
		return exitUsage
	}
	fs, g := newFlagSet(e, c)
	return c.run(e, fs, g, args[1:])
}

func newFlagSet(e *env, c *command) (*flag.FlagSet, *globals) {
	fs := flag.NewFlagSet("parallax "+c.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	g := &globals{}
	fs.StringVar(&g.domain, "domain", "", "router domain (default: $PARALLAX_DOMAIN or \"default\")")
	fs.StringVar(&g.socket, "socket", "", "router control socket (default: derived from the domain; $PARALLAX_SOCKET)")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: parallax %s %s\n\n%s\n\nflags:\n", c.name, c.usage, c.short)
		fs.PrintDefaults()
	}
	return fs, g
}

// parseFlags parses args into fs and reports a usage error as an exit code.
func parseFlags(fs *flag.FlagSet, args []string) (ok bool, code int) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, exitOK
		}
		return false, exitUsage
	}
	return true, exitOK
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "parallax — zero-copy multi-process data pipelines over shared memory")
	fmt.Fprintln(w, "\nusage: parallax <command> [flags] [args]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, commands[n].short)
	}
	fmt.Fprintln(w, "\nRun 'parallax help <command>' for a command's flags.")
	fmt.Fprintln(w, "Start a router first with: parallax-roudi [-domain name]")
}
