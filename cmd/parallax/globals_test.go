package main

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
)

// The global -domain and -socket flags work before the command as well as
// after it; after it they win.
func TestGlobalFlagsBeforeCommand(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	code, out, errs := runCLI(t, "", "-socket", srv.SocketPath(), "topics")
	require.Equal(t, exitOK, code, errs)
	require.Regexp(t, `^TOPIC\s+TYPE`, out)
	code, out, errs = runCLI(t, "", "-socket="+srv.SocketPath(), "pools", "-json")
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, out, `"Domain": "`+srv.Config().Domain+`"`, "pools -json of this router")

	// No router serves these domains: the error names the domain used.
	before := fmt.Sprintf("clitest-before-%d", os.Getpid())
	after := fmt.Sprintf("clitest-after-%d", os.Getpid())
	code, _, errs = runCLI(t, "", "-domain", before, "topics")
	require.Equal(t, exitNoRouter, code, errs)
	require.Contains(t, errs, "parallax-roudi -domain "+before)
	code, _, errs = runCLI(t, "", "-domain", before, "topics", "-domain", after)
	require.Equal(t, exitNoRouter, code, errs)
	require.Contains(t, errs, "parallax-roudi -domain "+after, "the flag after the command wins")

	code, _, errs = runCLI(t, "", "-domain", before, "no-such-command")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errs, `unknown command "no-such-command"`)
	code, _, errs = runCLI(t, "", "-bogus", "topics")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errs, "flag provided but not defined: -bogus")
	code, out, _ = runCLI(t, "", "-domain", before)
	require.Equal(t, exitUsage, code, "flags but no command")
	require.Contains(t, out, "commands:")
}

// flagNames returns the flags a flag.PrintDefaults listing in s names.
func flagNames(s string) []string {
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  -([A-Za-z0-9][A-Za-z0-9_.-]*)`).FindAllStringSubmatch(s, -1) {
		names = append(names, m[1])
	}
	sort.Strings(names)
	return slices.Compact(names)
}

// `parallax help <cmd>` lists every flag the command parses: the same
// flags `parallax <cmd> -h` (the command's own parser) lists.
func TestHelpListsEveryFlag(t *testing.T) {
	t.Parallel()
	for name := range commands {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, out, errs := runCLI(t, "", name, "-h")
			require.Equal(t, exitOK, code, errs)
			parsed := flagNames(out + errs)
			require.Subset(t, parsed, []string{"domain", "socket"})

			code, out, errs = runCLI(t, "", "help", name)
			require.Equal(t, exitOK, code, errs)
			require.Equal(t, parsed, flagNames(out), "help %s on stdout lists the flags %s -h parses", name, name)
			require.Regexp(t, `usage: parallax .*\b`+name+`\b`, out)
		})
	}
	// Spot checks that the lists are the commands' own flags.
	_, out, _ := runCLI(t, "", "help", "gateway")
	require.Subset(t, flagNames(out), []string{"nats", "export", "import", "prefix", "metrics"})
	_, out, _ = runCLI(t, "", "help", "pub")
	require.Subset(t, flagNames(out), []string{"n", "interval", "subs", "hex", "type", "history", "linger"})
	code, _, errs := runCLI(t, "", "help", "frobnicate")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errs, `unknown command "frobnicate"`)
	require.False(t, strings.Contains(errs, "\n\n\n"))
}
