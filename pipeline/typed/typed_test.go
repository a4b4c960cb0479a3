package typed_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
	"github.com/parallax-ipc/parallax/pipeline/typed"
)

type sample struct {
	Seq   uint64
	Value float64
}

func counter(n int) func(context.Context) (sample, error) {
	i := 0
	return func(context.Context) (sample, error) {
		if i == n {
			return sample{}, io.EOF
		}
		i++
		return sample{Seq: uint64(i), Value: float64(i) / 2}, nil
	}
}

func TestTypedPipeline(t *testing.T) {
	t.Parallel()
	var g pipeline.Graph
	src, err := typed.Source(&g, "src", counter(100))
	require.NoError(t, err)
	even, err := typed.Filter(src, "even", func(s sample) bool { return s.Seq%2 == 0 })
	require.NoError(t, err)
	// A fixed-layout value crosses an untyped queue.
	require.NoError(t, g.Add("q", &elements.Queue{}))
	require.NoError(t, g.Link(even.Node(), "q"))
	text, err := typed.Map(typed.Attach[sample](&g, "q"), "fmt", func(_ context.Context, s sample) (string, error) {
		return strconv.FormatUint(s.Seq, 10), nil
	})
	require.NoError(t, err)
	var got []string
	require.NoError(t, typed.Sink(text, "collect", func(_ context.Context, s string) error {
		got = append(got, s)
		return nil
	}))
	require.NoError(t, pipeline.Run(context.Background(), &g, pipeline.Options{}))
	require.Len(t, got, 50)
	require.Equal(t, "2", got[0])
	require.Equal(t, "100", got[49])
}

func TestTypedErrorsAndTypes(t *testing.T) {
	t.Parallel()
	var g pipeline.Graph
	src, err := typed.Source(&g, "src", counter(10))
	require.NoError(t, err)
	m, err := typed.Map(src, "boom", func(_ context.Context, s sample) (sample, error) {
		if s.Seq == 5 {
			return s, errors.New("five")
		}
		return s, nil
	})
	require.NoError(t, err)
	require.NoError(t, typed.Sink(m, "sink", func(context.Context, sample) error { return nil }))
	err = pipeline.Run(context.Background(), &g, pipeline.Options{})
	var ne *pipeline.NodeError
	require.True(t, errors.As(err, &ne))
	require.Equal(t, "boom", ne.Node)

	// Linking a typed port to a node of another type by name is caught at
	// validation (the compiler catches typed.Map on the wrong Port type).
	var g2 pipeline.Graph
	s2, err := typed.Source(&g2, "src", counter(1))
	require.NoError(t, err)
	require.NoError(t, typed.Sink(typed.Attach[string](&g2, s2.Node()), "strings", func(context.Context, string) error { return nil }))
	_, err = pipeline.New(&g2, pipeline.Options{})
	require.ErrorIs(t, err, pipeline.ErrIncompatible)
	require.ErrorContains(t, err, typed.TypeName[sample]())
}

func TestTypeName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "typed_test.sample", typed.TypeName[sample]())
	require.Equal(t, "string", typed.TypeName[string]())
}
