package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/parallax-ipc/parallax/pipeline"
)

func init() {
	register(&command{name: "inspect", short: "list pipeline elements, or show one element's properties and defaults",
		usage: "[element]", flags: noFlags(runInspect)})
}

func runInspect(e *env, fs *flag.FlagSet, _ *globals) int {
	const name = "inspect"
	if fs.NArg() > 1 {
		return failf(e, name, exitUsage, "at most one element name, got %d arguments", fs.NArg())
	}
	loadPlugins(e)
	r := pipeline.Default
	if fs.NArg() == 0 {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ELEMENT\tKIND\tORIGIN\tDESCRIPTION")
		for _, f := range r.Factories() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, f.Kind, f.Origin, f.Description)
		}
		tw.Flush()
		return exitOK
	}
	f, ok := r.Lookup(fs.Arg(0))
	if !ok {
		if s := r.Suggest(fs.Arg(0)); s != "" {
			return failf(e, name, exitUsage, "no element %q (did you mean %q?)", fs.Arg(0), s)
		}
		return failf(e, name, exitUsage, "no element %q (run 'parallax inspect' for the list)", fs.Arg(0))
	}
	fmt.Fprintf(e.stdout, "%s (%s, %s)\n  %s\n\nproperties:\n", f.Name, f.Kind, f.Origin, f.Description)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tTYPE\tDEFAULT\tALLOWED\tDESCRIPTION")
	fmt.Fprintln(tw, "  name\tstring\t(generated)\t\tnode name, for links like name.")
	for _, p := range f.Properties {
		def := p.Default
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", p.Name, p.Type, def, allowed(p), p.Description)
	}
	tw.Flush()
	return exitOK
}

// allowed describes a property's enum values or range.
func allowed(p pipeline.PropSpec) string {
	if p.Type == pipeline.PropEnum {
		return strings.Join(p.Enum, "|")
	}
	if p.Min >= p.Max {
		return ""
	}
	f := func(x float64) string {
		switch p.Type {
		case pipeline.PropBytes:
			return pipeline.FormatBytes(int64(x))
		case pipeline.PropDuration:
			return fmt.Sprint(durationOf(x))
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return "[" + f(p.Min) + ", " + f(p.Max) + "]"
}
