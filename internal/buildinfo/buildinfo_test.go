package buildinfo_test

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/buildinfo"
)

func TestFrom(t *testing.T) {
	t.Parallel()
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	for _, tc := range []struct {
		name string
		bi   debug.BuildInfo
		want []string
	}{{
		name: "checkout",
		bi:   debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: buildinfo.ModulePath, Version: "(devel)"}, Settings: vcs},
		want: []string{
			"module github.com/parallax-ipc/parallax (devel: built from a checkout without a version tag)",
			"commit 0123456789abcdef0123456789abcdef01234567 2026-01-02T03:04:05Z (modified)",
		},
	}, {
		name: "go install @version",
		bi:   debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: buildinfo.ModulePath, Version: "v1.2.3"}},
		want: []string{
			"module github.com/parallax-ipc/parallax v1.2.3",
			"commit unknown (built without version control information)",
		},
	}, {
		name: "dependency",
		bi: debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "example.com/app", Version: "v0.1.0"}, Settings: vcs,
			Deps: []*debug.Module{{Path: "example.com/other", Version: "v9"}, {Path: buildinfo.ModulePath, Version: "v1.4.0"}}},
		want: []string{"module github.com/parallax-ipc/parallax v1.4.0"},
	}, {
		name: "replaced dependency",
		bi: debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "example.com/app"},
			Deps: []*debug.Module{{Path: buildinfo.ModulePath, Version: "v1.4.0", Replace: &debug.Module{Path: "../parallax"}}}},
		want: []string{"module github.com/parallax-ipc/parallax (replaced by ../parallax)"},
	}, {
		name: "unknown",
		bi:   debug.BuildInfo{GoVersion: "go1.26.0"},
		want: []string{"module github.com/parallax-ipc/parallax (unknown version)"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lines := buildinfo.From(&tc.bi).Lines()
			require.Equal(t, tc.want, lines[:len(lines)-1])
			require.Regexp(t, `^built with go1\.26\.0 \w+/\w+$`, lines[len(lines)-1])
		})
	}
}
