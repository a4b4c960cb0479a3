package pipeline

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// ErrSyntax is wrapped by every [*SyntaxError].
var ErrSyntax = errors.New("launch syntax")

// A SyntaxError reports a problem of a launch line at a column (1-based,
// counted in characters), with a hint when one helps. Err wraps ErrSyntax
// and, for element or property problems, the registry's error.
type SyntaxError struct {
	Input string
	Col   int
	Msg   string
	Hint  string
	Err   error
}

func (e *SyntaxError) Error() string {
	s := fmt.Sprintf("launch: column %d: %s", e.Col, e.Msg)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Unwrap returns the causes.
func (e *SyntaxError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrSyntax, e.Err}
	}
	return []error{ErrSyntax}
}

// Caret returns the input line and a caret under the column, for terminals.
func (e *SyntaxError) Caret() string {
	return e.Input + "\n" + strings.Repeat(" ", max(e.Col-1, 0)) + "^"
}

// A Description is a parsed launch line: elements with their properties and
// the links between them, by node name.
type Description struct {
	Elements []ElementDesc
	Links    []LinkDesc
}

// ElementDesc is one element of a launch line.
type ElementDesc struct {
	Factory string
	Name    string // from name=..., or generated: factory name + counter ("queue0")
	Named   bool   // the name was given explicitly
	Props   []PropDesc
	Col     int
}

// PropDesc is one key=value of an element.
type PropDesc struct {
	Key, Value  string
	Col, ValCol int
}

// LinkDesc links two nodes by name; Col is the position of its "!".
type LinkDesc struct {
	From, To string
	Col      int
}

type token struct {
	kind  byte // 'w' word, 'r' ref ("t."), 'p' property, '!' link
	text  string
	value string // property value
	col   int
	vcol  int
}

func syntaxErr(in string, col int, msg, hint string) *SyntaxError {
	return &SyntaxError{Input: in, Col: col, Msg: msg, Hint: hint}
}

func isIdent(r rune, first bool) bool {
	return r == '_' || unicode.IsLetter(r) || !first && (unicode.IsDigit(r) || r == '-')
}

func lex(in string) ([]token, error) {
	rs := []rune(in)
	var toks []token
	for i := 0; i < len(rs); {
		r := rs[i]
		col := i + 1
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '!':
			toks = append(toks, token{kind: '!', col: col})
			i++
		case isIdent(r, true):
			j := i
			for j < len(rs) && isIdent(rs[j], false) {
				j++
			}
			word := string(rs[i:j])
			switch {
			case j < len(rs) && rs[j] == '.':
				j++
				if j < len(rs) && !unicode.IsSpace(rs[j]) && rs[j] != '!' {
					return nil, syntaxErr(in, j+1, fmt.Sprintf("unexpected %q after reference %q", rs[j], word+"."), "pad names are not supported; write name. alone")
				}
				toks = append(toks, token{kind: 'r', text: word, col: col})
			case j < len(rs) && rs[j] == '=':
				j++
				vcol := j + 1
				val, next, err := lexValue(in, rs, j)
				if err != nil {
					return nil, err
				}
				toks = append(toks, token{kind: 'p', text: word, value: val, col: col, vcol: vcol})
				j = next
			default:
				if j < len(rs) && !unicode.IsSpace(rs[j]) && rs[j] != '!' {
					return nil, syntaxErr(in, j+1, fmt.Sprintf("unexpected %q after %q", rs[j], word), "")
				}
				toks = append(toks, token{kind: 'w', text: word, col: col})
			}
			i = j
		case r == '"' || r == '\'':
			return nil, syntaxErr(in, col, "quoted string outside a property value", `write key="value"`)
		default:
			return nil, syntaxErr(in, col, fmt.Sprintf("unexpected %q", r), "expected an element, a property key=value, a reference name. or !")
		}
	}
	return toks, nil
}

// lexValue reads a property value starting at rs[i]: a quoted string (with
// \" \\ \' escapes) or a bare word up to a space or '!'.
func lexValue(in string, rs []rune, i int) (string, int, error) {
	if i >= len(rs) || unicode.IsSpace(rs[i]) || rs[i] == '!' {
		return "", i, syntaxErr(in, i+1, "missing property value after '='", `write key=value or key=""`)
	}
	q := rs[i]
	if q != '"' && q != '\'' {
		j := i
		for j < len(rs) && !unicode.IsSpace(rs[j]) && rs[j] != '!' {
			if rs[j] == '"' || rs[j] == '\'' {
				return "", j, syntaxErr(in, j+1, "quote inside an unquoted value", "quote the whole value")
			}
			j++
		}
		return string(rs[i:j]), j, nil
	}
	var sb strings.Builder
	for j := i + 1; j < len(rs); j++ {
		switch rs[j] {
		case q:
			if j+1 < len(rs) && !unicode.IsSpace(rs[j+1]) && rs[j+1] != '!' {
				return "", j + 1, syntaxErr(in, j+2, "unexpected character after closing quote", "separate properties with spaces")
			}
			return sb.String(), j + 1, nil
		case '\\':
			if j+1 < len(rs) {
				j++
			}
			sb.WriteRune(rs[j])
		default:
			sb.WriteRune(rs[j])
		}
	}
	return "", len(rs), syntaxErr(in, i+1, "unterminated quoted string", fmt.Sprintf("add the closing %c", q))
}

// Parse parses a launch line into a Description, without consulting a
// registry: elements are chained with '!', a new chain starts at an element
// or a reference ("name.") not preceded by '!', properties follow their
// element as key=value (name=... names the node), values may be quoted.
//
//	testsrc num-buffers=1000 size=4KiB ! tee name=t  t. ! queue ! fakesink  t. ! fakesink
func Parse(in string) (*Description, error) {
	toks, err := lex(in)
	if err != nil {
		return nil, err
	}
	d := &Description{}
	type end struct {
		elem int // index into d.Elements, or -1
		ref  string
		col  int
	}
	var prev *end
	linkCol := 0 // column of a pending '!', 0 if none
	var refs []token
	var pending []struct {
		from, to end
		col      int
	}
	lastElem := -1 // element properties attach to; -1 after a ref or '!'
	link := func(to end) {
		if linkCol != 0 {
			pending = append(pending, struct {
				from, to end
				col      int
			}{*prev, to, linkCol})
			linkCol = 0
		}
		prev = &to
	}
	for _, t := range toks {
		switch t.kind {
		case '!':
			if prev == nil {
				return nil, syntaxErr(in, t.col, "link '!' without an element before it", "start with an element, or a reference name.")
			}
			if linkCol != 0 {
				return nil, syntaxErr(in, t.col, "two '!' in a row", "put an element between them")
			}
			linkCol, lastElem = t.col, -1
		case 'w':
			d.Elements = append(d.Elements, ElementDesc{Factory: t.text, Col: t.col})
			lastElem = len(d.Elements) - 1
			link(end{elem: lastElem, col: t.col})
		case 'r':
			refs = append(refs, t)
			lastElem = -1
			link(end{elem: -1, ref: t.text, col: t.col})
		case 'p':
			if lastElem < 0 {
				return nil, syntaxErr(in, t.col, fmt.Sprintf("property %q without an element", t.text), "properties follow their element: element key=value")
			}
			e := &d.Elements[lastElem]
			if t.text == "name" {
				if e.Named {
					return nil, syntaxErr(in, t.col, "name given twice", "")
				}
				e.Name, e.Named = t.value, true
				if !validName(t.value) {
					return nil, syntaxErr(in, t.vcol, fmt.Sprintf("bad node name %q", t.value), "use letters, digits, _ and -")
				}
				continue
			}
			for _, p := range e.Props {
				if p.Key == t.text {
					return nil, syntaxErr(in, t.col, fmt.Sprintf("property %q given twice", t.text), "")
				}
			}
			e.Props = append(e.Props, PropDesc{Key: t.text, Value: t.value, Col: t.col, ValCol: t.vcol})
		}
	}
	if linkCol != 0 {
		return nil, syntaxErr(in, linkCol, "link '!' without an element after it", "end the line with an element or a reference name.")
	}
	if len(d.Elements) == 0 {
		return nil, syntaxErr(in, 1, "no element", "for example: testsrc ! fakesink")
	}
	// Names: explicit ones first, then factory+counter for the rest.
	taken := map[string]int{}
	for i, e := range d.Elements {
		if e.Named {
			if j, dup := taken[e.Name]; dup {
				return nil, syntaxErr(in, e.Col, fmt.Sprintf("node name %q already used", e.Name), fmt.Sprintf("by the element at column %d", d.Elements[j].Col))
			}
			taken[e.Name] = i
		}
	}
	counter := map[string]int{}
	for i := range d.Elements {
		e := &d.Elements[i]
		if e.Named {
			continue
		}
		for {
			n := e.Factory + strconv.Itoa(counter[e.Factory])
			counter[e.Factory]++
			if _, dup := taken[n]; !dup {
				e.Name = n
				taken[n] = i
				break
			}
		}
	}
	names := make([]string, 0, len(taken))
	for n := range taken {
		names = append(names, n)
	}
	for _, r := range refs {
		if _, ok := taken[r.text]; !ok {
			hint := "name an element with name=" + r.text
			if c := closest(r.text, names); c != "" {
				hint = fmt.Sprintf("did you mean %q?", c+".")
			}
			return nil, syntaxErr(in, r.col, fmt.Sprintf("reference %q names no element", r.text+"."), hint)
		}
	}
	resolve := func(e end) string {
		if e.elem >= 0 {
			return d.Elements[e.elem].Name
		}
		return e.ref
	}
	for _, l := range pending {
		from, to := resolve(l.from), resolve(l.to)
		if from == to {
			return nil, syntaxErr(in, l.col, fmt.Sprintf("link from %q to itself", from), "")
		}
		d.Links = append(d.Links, LinkDesc{From: from, To: to, Col: l.col})
	}
	return d, nil
}

func validName(s string) bool {
	for i, r := range s {
		if !isIdent(r, i == 0) {
			return false
		}
	}
	return s != ""
}

// String formats d as a canonical launch line that parses back to d (up to
// columns): every element with its name, then every link between
// references.
func (d *Description) String() string {
	var parts []string
	for _, e := range d.Elements {
		s := e.Factory + " name=" + e.Name
		for _, p := range e.Props {
			s += " " + p.Key + "=" + quoteValue(p.Value)
		}
		parts = append(parts, s)
	}
	for _, l := range d.Links {
		parts = append(parts, l.From+". ! "+l.To+".")
	}
	return strings.Join(parts, "  ")
}

func quoteValue(v string) string {
	if v != "" && !strings.ContainsFunc(v, func(r rune) bool {
		return unicode.IsSpace(r) || r == '!' || r == '"' || r == '\'' || r == '\\'
	}) {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// Build makes a Graph from d with elements from r (nil means [Default]).
// Unknown elements and bad properties become [*SyntaxError]s at the
// element's or property's column, with the closest name as a hint.
func (d *Description) Build(in string, r *Registry) (*Graph, error) {
	if r == nil {
		r = Default
	}
	g := &Graph{}
	for _, e := range d.Elements {
		f, ok := r.Lookup(e.Factory)
		if !ok {
			se := syntaxErr(in, e.Col, fmt.Sprintf("unknown element %q", e.Factory), "")
			se.Err = ErrUnknownElement
			if s := r.Suggest(e.Factory); s != "" {
				se.Hint = fmt.Sprintf("did you mean %q?", s)
			} else {
				se.Hint = "see parallax inspect for the list of elements"
			}
			return nil, se
		}
		props := f.NewProps()
		for _, p := range e.Props {
			if err := props.Set(p.Key, p.Value); err != nil {
				var pe *PropertyError
				se := syntaxErr(in, p.Col, err.Error(), "")
				if errors.As(err, &pe) {
					se.Msg = fmt.Sprintf("%s: unknown property %q", e.Factory, p.Key)
					if errors.Is(err, ErrBadValue) {
						se.Col = p.ValCol
						se.Msg = fmt.Sprintf("%s: property %q: bad value %q", e.Factory, p.Key, p.Value)
						se.Hint = strings.TrimPrefix(pe.Err.Error(), ErrBadValue.Error()+": ")
					} else {
						se.Hint = pe.Hint
					}
				}
				se.Err = err
				return nil, se
			}
		}
		el, err := f.New(props)
		if err != nil {
			se := syntaxErr(in, e.Col, fmt.Sprintf("create %s: %v", e.Factory, err), "")
			se.Err = err
			return nil, se
		}
		if err := g.add(e.Name, el, e.Factory); err != nil {
			se := syntaxErr(in, e.Col, err.Error(), "")
			se.Err = err
			return nil, se
		}
	}
	for _, l := range d.Links {
		if err := g.Link(l.From, l.To); err != nil {
			se := syntaxErr(in, l.Col, err.Error(), "")
			se.Err = err
			return nil, se
		}
	}
	return g, nil
}

// Launch parses a launch line and builds its graph with elements from r
// (nil means [Default]). The graph is validated by [New].
func Launch(in string, r *Registry) (*Graph, error) {
	d, err := Parse(in)
	if err != nil {
		return nil, err
	}
	return d.Build(in, r)
}
