// Package buildinfo describes how the running Parallax binary was built:
// the Parallax module's version and, for a build from a checkout, the
// version-control commit, from [debug.ReadBuildInfo]. The commands'
// version output uses it.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// ModulePath is the Parallax module's path.
const ModulePath = "github.com/parallax-ipc/parallax"

// Info describes a binary's build. The zero value means nothing is known.
type Info struct {
	// Version is the Parallax module's version: a release (v1.2.3) or
	// pseudo-version when built with `go install ...@version` or from a
	// tagged checkout, or "(devel)" when built from a checkout without
	// one; "" when unknown (a binary without build information).
	Version string
	// Main reports whether Parallax is the binary's main module (else it
	// is a dependency of another program, and the VCS fields are that
	// program's, so they are left empty).
	Main bool
	// Revision, Time and Modified are the commit the binary was built
	// from, its commit time and whether the work tree had uncommitted
	// changes (vcs.revision, vcs.time, vcs.modified); empty when the build
	// had no version-control information (a module download, -buildvcs=false).
	Revision string
	Time     string
	Modified bool
	// GoVersion is the toolchain that built the binary.
	GoVersion string
}

// Read returns the running binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{GoVersion: runtime.Version()}
	}
	return From(bi)
}

// From extracts the Parallax module's build information from bi.
func From(bi *debug.BuildInfo) Info {
	info := Info{GoVersion: bi.GoVersion}
	switch bi.Main.Path {
	case ModulePath:
		info.Main, info.Version = true, bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.time":
				info.Time = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	default:
		for _, d := range bi.Deps {
			if d.Path == ModulePath {
				info.Version = d.Version
				if d.Replace != nil {
					info.Version = strings.TrimSpace(d.Replace.Version + " (replaced by " + d.Replace.Path + ")")
				}
				break
			}
		}
	}
	return info
}

// Lines renders the information as "module <path> <version>" and, when
// known, "commit <revision> <time> (modified)" and "built with <go>".
func (i Info) Lines() []string {
	v := i.Version
	switch v {
	case "":
		v = "(unknown version)"
	case "(devel)":
		v = "(devel: built from a checkout without a version tag)"
	}
	lines := []string{"module " + ModulePath + " " + v}
	switch {
	case i.Revision != "":
		c := "commit " + i.Revision
		if i.Time != "" {
			c += " " + i.Time
		}
		if i.Modified {
			c += " (modified)"
		}
		lines = append(lines, c)
	case i.Main:
		lines = append(lines, "commit unknown (built without version control information)")
	}
	if i.GoVersion != "" {
		lines = append(lines, fmt.Sprintf("built with %s %s/%s", i.GoVersion, runtime.GOOS, runtime.GOARCH))
	}
	return lines
}

// String is Lines joined by newlines.
func (i Info) String() string { return strings.Join(i.Lines(), "\n") }
