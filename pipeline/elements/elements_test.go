package elements_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
)

func TestRegistered(t *testing.T) {
	t.Parallel()
	names := map[string]bool{}
	for _, f := range pipeline.Default.Factories() {
		names[f.Name] = true
		require.NotEmpty(t, f.Description, f.Name)
		require.Equal(t, "builtin", f.Origin)
		for _, p := range f.Properties {
			require.NotEmpty(t, p.Description, "%s.%s", f.Name, p.Name)
		}
	}
	for _, n := range []string{"testsrc", "filesrc", "filesink", "fakesink", "identity", "checksum", "tee", "queue", "funnel", "ratelimit"} {
		require.True(t, names[n], n)
	}
	var r pipeline.Registry
	elements.Register(&r)
	require.Panics(t, func() { elements.Register(&r) })
}

func TestTestSrcPatterns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, pat := range []string{elements.PatternZero, elements.PatternCounter, elements.PatternRandom} {
		s := &elements.TestSrc{Size: 8, Pattern: pat, NumBuffers: 2, Rate: 1e6}
		b0, err := s.Produce(ctx)
		require.NoError(t, err)
		b1, err := s.Produce(ctx)
		require.NoError(t, err)
		_, err = s.Produce(ctx)
		require.Error(t, err) // io.EOF
		require.Equal(t, uint64(1), b1.Meta.Seq)
		require.Equal(t, uint64(8), b1.Meta.Offset)
		require.Positive(t, b1.Meta.Duration)
		switch pat {
		case elements.PatternZero:
			require.Equal(t, make([]byte, 8), b1.Bytes())
		case elements.PatternCounter:
			require.Equal(t, []byte{1, 2, 3, 4, 5, 6, 7, 8}, b1.Bytes())
		case elements.PatternRandom:
			require.NotEqual(t, b0.Bytes(), b1.Bytes())
		}
		b0.Release()
		b1.Release()
	}
}
