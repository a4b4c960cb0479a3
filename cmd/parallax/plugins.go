package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/parallax-ipc/parallax/plugin"
)

func init() {
	register(&command{name: "plugins", short: "list the element plugins of $PARALLAX_PLUGIN_PATH and their elements",
		usage: "", flags: noFlags(runPlugins)})
}

func runPlugins(e *env, fs *flag.FlagSet, _ *globals) int {
	const name = "plugins"
	if fs.NArg() != 0 {
		return failf(e, name, exitUsage, "unexpected argument %q", fs.Arg(0))
	}
	path := os.Getenv(plugin.EnvPath)
	_, err := plugin.LoadPath(path, nil)
	infos := plugin.Loaded(nil)
	if path == "" {
		fmt.Fprintf(e.stdout, "no plugin directories (set %s, colon-separated); plugin ABI version %d\n", plugin.EnvPath, plugin.ABIVersion)
	} else {
		fmt.Fprintf(e.stdout, "%s=%s (plugin ABI version %d)\n", plugin.EnvPath, path, plugin.ABIVersion)
	}
	for _, i := range infos {
		fmt.Fprintf(e.stdout, "%s %s  %s\n  elements: %s\n", i.Name, i.Version, i.Path, strings.Join(i.Elements, ", "))
		if i.Description != "" {
			fmt.Fprintf(e.stdout, "  %s\n", i.Description)
		}
	}
	if len(infos) == 0 && path != "" {
		fmt.Fprintln(e.stdout, "no plugins found")
	}
	if err != nil {
		return failf(e, name, exitFailure, "%v", err)
	}
	return exitOK
}

func durationOf(ns float64) time.Duration { return time.Duration(ns) }
