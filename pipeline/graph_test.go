package pipeline_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
)

type typedOut struct{ elements.TestSrc }

func (typedOut) PadTypes() (string, string) { return "", "video" }

type typedIn struct{ elements.FakeSink }

func (typedIn) PadTypes() (string, string) { return "audio", "" }

func TestGraphValidation(t *testing.T) {
	t.Parallel()
	src := func() pipeline.Element { return &elements.TestSrc{} }
	id := func() pipeline.Element { return &elements.Identity{} }
	sink := func() pipeline.Element { return &elements.FakeSink{} }
	type node struct {
		name string
		e    pipeline.Element
	}
	for _, tc := range []struct {
		name  string
		nodes []node
		links [][2]string
		want  error
		names []string // substrings the message must hold
	}{
		{"ok", []node{{"a", src()}, {"b", id()}, {"c", sink()}}, [][2]string{{"a", "b"}, {"b", "c"}}, nil, nil},
		{"empty", nil, nil, pipeline.ErrEmpty, nil},
		{"cycle", []node{{"a", src()}, {"f", &elements.Funnel{}}, {"x", id()}, {"t", &elements.Tee{}}, {"s", sink()}},
			[][2]string{{"a", "f"}, {"f", "x"}, {"x", "t"}, {"t", "f"}, {"t", "s"}}, pipeline.ErrCycle, []string{`"f" -> "x" -> "t" -> "f"`}},
		{"unlinked input", []node{{"a", src()}, {"b", id()}, {"c", sink()}}, [][2]string{{"b", "c"}}, pipeline.ErrUnlinked, []string{`"a"`, `"b"`, "needs 1 input, has 0"}},
		{"unlinked output", []node{{"a", src()}, {"b", id()}}, [][2]string{{"a", "b"}}, pipeline.ErrUnlinked, []string{`"b"`, "needs 1 output"}},
		{"too many", []node{{"a", src()}, {"b", sink()}, {"c", sink()}}, [][2]string{{"a", "b"}, {"a", "c"}}, pipeline.ErrTooManyLinks, []string{`"a"`, "accepts 1 output, has 2"}},
		{"incompatible", []node{{"v", &typedOut{}}, {"au", &typedIn{}}}, [][2]string{{"v", "au"}}, pipeline.ErrIncompatible, []string{`"v", "au"`, "output type video, input type audio"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var g pipeline.Graph
			for _, n := range tc.nodes {
				require.NoError(t, g.Add(n.name, n.e))
			}
			for _, l := range tc.links {
				require.NoError(t, g.Link(l[0], l[1]))
			}
			err := g.Validate()
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			var ge *pipeline.GraphError
			require.True(t, errors.As(err, &ge))
			for _, s := range tc.names {
				require.Contains(t, err.Error(), s)
			}
			_, err = pipeline.New(&g, pipeline.Options{})
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestGraphBuildErrors(t *testing.T) {
	t.Parallel()
	var g pipeline.Graph
	require.NoError(t, g.Add("a", &elements.TestSrc{}))
	require.ErrorIs(t, g.Add("a", &elements.FakeSink{}), pipeline.ErrDuplicateNode)
	require.ErrorIs(t, g.Add("x", 42), pipeline.ErrNotElement)
	err := g.Link("a", "nope")
	require.ErrorIs(t, err, pipeline.ErrUnknownNode)
	require.Contains(t, err.Error(), `"nope"`)
	require.NoError(t, g.Add("b", &elements.FakeSink{}))
	require.NoError(t, g.Link("a", "b"))
	require.ErrorIs(t, g.Link("a", "b"), pipeline.ErrDuplicateLink)
	require.Equal(t, []string{"a", "b"}, g.Nodes())
	require.Len(t, g.Links(), 1)
}
