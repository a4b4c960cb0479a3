package pipeline_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/pipeline"
)

func TestParseValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec pipeline.PropSpec
		in   string
		want any
		bad  string
	}{
		{pipeline.PropSpec{Type: pipeline.PropInt}, "42", int64(42), ""},
		{pipeline.PropSpec{Type: pipeline.PropInt}, "0x10", int64(16), ""},
		{pipeline.PropSpec{Type: pipeline.PropInt}, "1_000", int64(1000), ""},
		{pipeline.PropSpec{Type: pipeline.PropInt}, "4.5", nil, "not an integer"},
		{pipeline.PropSpec{Type: pipeline.PropInt, Min: 1, Max: 10}, "11", nil, "out of range [1, 10]"},
		{pipeline.PropSpec{Type: pipeline.PropFloat}, "2.5", 2.5, ""},
		{pipeline.PropSpec{Type: pipeline.PropFloat}, "NaN", nil, "not a number"},
		{pipeline.PropSpec{Type: pipeline.PropBool}, "yes", true, ""},
		{pipeline.PropSpec{Type: pipeline.PropBool}, "off", false, ""},
		{pipeline.PropSpec{Type: pipeline.PropBool}, "maybe", nil, "not a boolean"},
		{pipeline.PropSpec{Type: pipeline.PropString}, "a b", "a b", ""},
		{pipeline.PropSpec{Type: pipeline.PropEnum, Enum: []string{"zero", "counter"}}, "counter", "counter", ""},
		{pipeline.PropSpec{Type: pipeline.PropEnum, Enum: []string{"zero", "counter"}}, "countr", nil, `did you mean "counter"?`},
		{pipeline.PropSpec{Type: pipeline.PropBytes}, "64KiB", int64(65536), ""},
		{pipeline.PropSpec{Type: pipeline.PropBytes}, "1.5MiB", int64(1572864), ""},
		{pipeline.PropSpec{Type: pipeline.PropBytes}, "2MB", int64(2000000), ""},
		{pipeline.PropSpec{Type: pipeline.PropBytes}, "4096", int64(4096), ""},
		{pipeline.PropSpec{Type: pipeline.PropBytes}, "-1KiB", nil, "not a byte size"},
		{pipeline.PropSpec{Type: pipeline.PropBytes}, "4 parsecs", nil, "not a byte size"},
		{pipeline.PropSpec{Type: pipeline.PropDuration}, "1.5s", 1500 * time.Millisecond, ""},
		{pipeline.PropSpec{Type: pipeline.PropDuration}, "soon", nil, "not a duration"},
	} {
		v, err := pipeline.ParseValue(tc.spec, tc.in)
		if tc.bad != "" {
			require.ErrorContains(t, err, tc.bad, "%v %q", tc.spec.Type, tc.in)
			continue
		}
		require.NoError(t, err, "%v %q", tc.spec.Type, tc.in)
		require.Equal(t, tc.want, v)
	}
	require.Equal(t, "64KiB", pipeline.FormatBytes(65536))
	require.Equal(t, "1000", pipeline.FormatBytes(1000))
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	var r pipeline.Registry
	f := pipeline.Factory{
		Name: "thing", Kind: "sink",
		Properties: []pipeline.PropSpec{
			{Name: "size", Type: pipeline.PropBytes, Default: "1KiB"},
			{Name: "mode", Type: pipeline.PropEnum, Enum: []string{"a", "b"}, Default: "a"},
		},
		New: func(p *pipeline.Props) (pipeline.Element, error) {
			return &sizeSink{size: p.Bytes("size"), mode: p.String("mode")}, nil
		},
	}
	require.NoError(t, r.Register(f))
	require.ErrorIs(t, r.Register(f), pipeline.ErrDuplicateFactory)
	bad := f
	bad.Name = "other"
	bad.Properties = []pipeline.PropSpec{{Name: "n", Type: pipeline.PropInt, Default: "x"}}
	require.ErrorIs(t, r.Register(bad), pipeline.ErrBadFactory)
	bad.Properties = []pipeline.PropSpec{{Name: "name", Type: pipeline.PropString}}
	require.ErrorIs(t, r.Register(bad), pipeline.ErrBadFactory)

	e, err := r.Make("thing", map[string]string{"size": "2KiB"})
	require.NoError(t, err)
	require.Equal(t, int64(2048), e.(*sizeSink).size)
	require.Equal(t, "a", e.(*sizeSink).mode)

	_, err = r.Make("thin", nil)
	require.ErrorIs(t, err, pipeline.ErrUnknownElement)
	require.ErrorContains(t, err, `did you mean "thing"?`)

	_, err = r.Make("thing", map[string]string{"sise": "1"})
	var pe *pipeline.PropertyError
	require.True(t, errors.As(err, &pe))
	require.ErrorIs(t, err, pipeline.ErrUnknownProperty)
	require.Equal(t, `did you mean "size"?`, pe.Hint)

	_, err = r.Make("thing", map[string]string{"mode": "c"})
	require.ErrorIs(t, err, pipeline.ErrBadValue)
	require.ErrorContains(t, err, `"mode"`)
	require.Len(t, r.Factories(), 1)
}

type sizeSink struct {
	pipeline.Sink
	size int64
	mode string
}
