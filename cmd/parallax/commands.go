package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// A command is one `parallax <name>` subcommand. Each lives in its own file
// and registers itself in an init function with register.
type command struct {
	name  string
	short string // one line for `parallax help`
	usage string // argument synopsis, e.g. "[flags] <topic>"
	// flags declares the command's own flags on fs (which already holds
	// the global -domain and -socket) and returns the function that runs
	// the command once fs has parsed its arguments. Parsing and help use
	// the same declaration, so `parallax help <name>` lists every flag.
	flags func(fs *flag.FlagSet) runFunc
}

// runFunc runs a command whose flags fs has parsed: fs.Args() are its
// positional arguments and g the global flags. It returns the exit code.
type runFunc func(e *env, fs *flag.FlagSet, g *globals) int

// noFlags is the flags function of a command without flags of its own.
func noFlags(r runFunc) func(*flag.FlagSet) runFunc {
	return func(*flag.FlagSet) runFunc { return r }
}

// env is the process environment a command runs in (swappable in tests).
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// globals are the flags every command accepts, before or after its name.
type globals struct {
	domain string
	socket string
}

// declare adds the global flags, bound to g, to fs.
func (g *globals) declare(fs *flag.FlagSet) {
	fs.StringVar(&g.domain, "domain", "", "router domain (default: $PARALLAX_DOMAIN or \"default\")")
	fs.StringVar(&g.socket, "socket", "", "router control socket (default: derived from the domain; $PARALLAX_SOCKET)")
}

// inherit fills the flags not given after the command from those given
// before it.
func (g *globals) inherit(before globals) {
	if g.domain == "" {
		g.domain = before.domain
	}
	if g.socket == "" {
		g.socket = before.socket
	}
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

// run is the whole CLI: parallax [global flags] <command> [flags] [args].
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	var before globals
	gfs := flag.NewFlagSet("parallax", flag.ContinueOnError)
	gfs.SetOutput(e.stderr)
	before.declare(gfs)
	gfs.Usage = func() { usage(e.stderr) }
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		args = []string{"help"}
	}
	if err := gfs.Parse(args); err != nil {
		return exitUsage
	}
	args = gfs.Args()
	if len(args) == 0 {
		usage(e.stdout)
		return exitUsage
	}
	if args[0] == "help" {
		if len(args) == 1 {
			usage(e.stdout)
			return exitOK
		}
		c := commands[args[1]]
		if c == nil {
			fmt.Fprintf(e.stderr, "parallax help: unknown command %q (run 'parallax help')\n", args[1])
			return exitUsage
		}
		fs, _, _ := newFlagSet(e, c)
		fs.SetOutput(e.stdout)
		fs.Usage()
		return exitOK
	}
	c := commands[args[0]]
	if c == nil {
		fmt.Fprintf(e.stderr, "parallax: unknown command %q (run 'parallax help')\n", args[0])
		return exitUsage
	}
	fs, g, runCmd := newFlagSet(e, c)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	g.inherit(before)
	return runCmd(e, fs, g)
}

// newFlagSet returns c's flag set (global and own flags; usage on stderr),
// the globals it binds and the function that runs c once it has parsed.
func newFlagSet(e *env, c *command) (*flag.FlagSet, *globals, runFunc) {
	fs := flag.NewFlagSet("parallax "+c.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	g := &globals{}
	g.declare(fs)
	runCmd := c.flags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: parallax [-domain name] [-socket path] %s\n\n%s\n\nflags (-domain and -socket may also come before %s):\n",
			strings.TrimSpace(c.name+" "+c.usage), c.short, c.name)
		fs.PrintDefaults()
	}
	return fs, g, runCmd
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "parallax — zero-copy multi-process data pipelines over shared memory")
	fmt.Fprintln(w, "\nusage: parallax [-domain name] [-socket path] <command> [flags] [args]\n\ncommands:")
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
