package pipeline_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/pipeline"
	_ "github.com/parallax-ipc/parallax/pipeline/elements"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in    string
		elems []string // name:factory
		links []string // from>to
	}{
		{"testsrc ! fakesink", []string{"testsrc0:testsrc", "fakesink0:fakesink"}, []string{"testsrc0>fakesink0"}},
		{"testsrc num-buffers=1000 size=4KiB ! tee name=t t. ! queue ! fakesink t. ! fakesink",
			[]string{"testsrc0:testsrc", "t:tee", "queue0:queue", "fakesink0:fakesink", "fakesink1:fakesink"},
			[]string{"testsrc0>t", "t>queue0", "queue0>fakesink0", "t>fakesink1"}},
		{"testsrc ! f.  testsrc ! f.  funnel name=f ! fakesink",
			[]string{"testsrc0:testsrc", "testsrc1:testsrc", "f:funnel", "fakesink0:fakesink"},
			[]string{"testsrc0>f", "testsrc1>f", "f>fakesink0"}},
		{"testsrc name=testsrc0!fakesink name=x", []string{"testsrc0:testsrc", "x:fakesink"}, []string{"testsrc0>x"}},
		{"fakesink name=fakesink0 fakesink", []string{"fakesink0:fakesink", "fakesink1:fakesink"}, nil},
	} {
		d, err := pipeline.Parse(tc.in)
		require.NoError(t, err, tc.in)
		var elems, links []string
		for _, e := range d.Elements {
			elems = append(elems, e.Name+":"+e.Factory)
		}
		for _, l := range d.Links {
			links = append(links, l.From+">"+l.To)
		}
		require.Equal(t, tc.elems, elems, tc.in)
		require.Equal(t, tc.links, links, tc.in)
	}
	_, err := pipeline.Parse(`filesink location="/tmp/a b\"c" x='it''s'`)
	require.Error(t, err) // 'it''s' has a quote right after the closing one
	d, err := pipeline.Parse(`filesink location="/tmp/a b\"c!" mode='x y'`)
	require.NoError(t, err)
	require.Equal(t, `/tmp/a b"c!`, d.Elements[0].Props[0].Value)
	require.Equal(t, "x y", d.Elements[0].Props[1].Value)
	require.Equal(t, 34, d.Elements[0].Props[1].Col)
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		col  int
		msg  string
		hint string
	}{
		{"", 1, "no element", "testsrc ! fakesink"},
		{"! fakesink", 1, "without an element before", ""},
		{"testsrc !", 9, "without an element after", ""},
		{"testsrc ! ! fakesink", 11, "two '!'", ""},
		{"testsrc size=", 14, "missing property value", ""},
		{`testsrc pattern="zero`, 17, "unterminated quoted string", `closing "`},
		{"testsrc ! x. ", 11, `reference "x." names no element`, "name=x"},
		{"tee name=tt ! fakesink t. ! fakesink", 24, `reference "t." names no element`, `did you mean "tt."?`},
		{"testsrc ! tee name=t name=u", 22, "name given twice", ""},
		{"testsrc ! fakesink name=a fakesink name=a", 27, `node name "a" already used`, "column 11"},
		{"size=4 ! fakesink", 1, `property "size" without an element`, ""},
		{"testsrc ! $", 11, `unexpected '$'`, ""},
		{"t.x ! fakesink", 3, "after reference", "pad names"},
		{"testsrc size=1\"2 ! fakesink", 15, "quote inside an unquoted value", ""},
	} {
		_, err := pipeline.Parse(tc.in)
		var se *pipeline.SyntaxError
		require.True(t, errors.As(err, &se), "%q: %v", tc.in, err)
		require.ErrorIs(t, err, pipeline.ErrSyntax)
		require.Equal(t, tc.col, se.Col, "%q: %v", tc.in, err)
		require.Contains(t, se.Msg, tc.msg, tc.in)
		require.Contains(t, se.Hint, tc.hint, tc.in)
		require.Contains(t, se.Caret(), "^")
	}
}

func TestLaunchErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		col  int
		is   error
		msg  string
		hint string
	}{
		{"testsrc ! fakesnk", 11, pipeline.ErrUnknownElement, `unknown element "fakesnk"`, `did you mean "fakesink"?`},
		{"testsrc sise=4KiB ! fakesink", 9, pipeline.ErrUnknownProperty, `testsrc: unknown property "sise"`, `did you mean "size"?`},
		{"testsrc size=4KB2 ! fakesink", 14, pipeline.ErrBadValue, `property "size": bad value "4KB2"`, "not a byte size"},
		{"testsrc pattern=zeros ! fakesink", 17, pipeline.ErrBadValue, `bad value "zeros"`, `did you mean "zero"?`},
		{"testsrc ! queue leaky=sideways ! fakesink", 23, pipeline.ErrBadValue, `"leaky"`, "one of no, upstream, downstream"},
		{"filesrc ! fakesink", 1, nil, "location is required", ""},
	} {
		_, err := pipeline.Launch(tc.in, nil)
		var se *pipeline.SyntaxError
		require.True(t, errors.As(err, &se), "%q: %v", tc.in, err)
		require.Equal(t, tc.col, se.Col, "%q: %v", tc.in, err)
		if tc.is != nil {
			require.ErrorIs(t, err, tc.is, tc.in)
		}
		require.Contains(t, se.Msg, tc.msg, tc.in)
		require.Contains(t, se.Hint, tc.hint, tc.in)
	}
	// Graph errors name nodes.
	g, err := pipeline.Launch("testsrc ! identity name=id", nil)
	require.NoError(t, err)
	_, err = pipeline.New(g, pipeline.Options{})
	require.ErrorIs(t, err, pipeline.ErrUnlinked)
	require.Contains(t, err.Error(), `"id"`)
	require.Equal(t, "identity", g.Factory("id"))
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"testsrc num-buffers=1000 size=4KiB ! tee name=t t. ! queue ! fakesink t. ! fakesink",
		`filesink location="a b\"c" x='y'`, "a ! b. c. ! d", "!", "x=", `"`, "a name=b b. ! a",
		"testsrc ! f. testsrc ! f. funnel name=f ! fakesink", "é ! ü",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d, err := pipeline.Parse(in)
		if err != nil {
			var se *pipeline.SyntaxError
			if !errors.As(err, &se) || se.Col < 1 || se.Col > len([]rune(in))+1 {
				t.Fatalf("%q: bad error %v", in, err)
			}
			return
		}
		again, err := pipeline.Parse(d.String())
		if err != nil {
			t.Fatalf("%q: canonical form %q does not parse: %v", in, d.String(), err)
		}
		if !sameDesc(d, again) {
			t.Fatalf("%q: canonical form %q parses differently", in, d.String())
		}
		// Building never panics either.
		_, _ = d.Build(in, nil)
	})
}

func sameDesc(a, b *pipeline.Description) bool {
	if len(a.Elements) != len(b.Elements) || len(a.Links) != len(b.Links) {
		return false
	}
	for i, e := range a.Elements {
		o := b.Elements[i]
		if e.Factory != o.Factory || e.Name != o.Name || len(e.Props) != len(o.Props) {
			return false
		}
		for j, p := range e.Props {
			if p.Key != o.Props[j].Key || p.Value != o.Props[j].Value {
				return false
			}
		}
	}
	for i, l := range a.Links {
		if l.From != b.Links[i].From || l.To != b.Links[i].To {
			return false
		}
	}
	return true
}
