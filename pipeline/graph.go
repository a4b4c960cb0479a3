package pipeline

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of graph construction and validation. They arrive wrapped in a
// [*GraphError] naming the nodes concerned.
var (
	ErrDuplicateNode = errors.New("duplicate node name")
	ErrUnknownNode   = errors.New("unknown node")
	ErrNotElement    = errors.New("not an element (implements none of Source, Transform, Sink, Runner)")
	ErrDuplicateLink = errors.New("duplicate link")
	ErrCycle         = errors.New("cycle")
	ErrUnlinked      = errors.New("unlinked pad")
	ErrTooManyLinks  = errors.New("too many links")
	ErrIncompatible  = errors.New("incompatible types")
	ErrEmpty         = errors.New("empty pipeline")
)

// A GraphError reports a problem of the graph and the nodes involved (for a
// link: from, to; for a cycle: the nodes along it).
type GraphError struct {
	Nodes  []string
	Detail string // what exactly, for example "needs 1 input, has 0"
	Err    error
}

func (e *GraphError) Error() string {
	s := "pipeline graph: " + e.Err.Error()
	if len(e.Nodes) > 0 {
		q := make([]string, len(e.Nodes))
		for i, n := range e.Nodes {
			q[i] = fmt.Sprintf("%q", n)
		}
		sep := ", "
		if errors.Is(e.Err, ErrCycle) {
			sep = " -> "
		}
		s += " at " + strings.Join(q, sep)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel.
func (e *GraphError) Unwrap() error { return e.Err }

// DefaultCapacity is the capacity of a link whose [LinkOptions] give none.
const DefaultCapacity = 16

// LinkOptions configure a link. The zero value is the default.
type LinkOptions struct {
	// Capacity is how many buffers the link holds before the upstream node
	// blocks (backpressure); 0 means [DefaultCapacity].
	Capacity int
}

// A Link joins an output of From to an input of To.
type Link struct {
	From, To string
	Options  LinkOptions
}

type node struct {
	name    string
	elem    Element
	factory string
	ins     []int // link indices
	outs    []int
}

// Graph is a set of named nodes and links between them, built up before a
// [Pipeline] runs it. Nodes have as many inputs and outputs as their
// elements accept (see [PadSpec]); inputs and outputs are numbered in the
// order links were added.
//
// The zero value is an empty graph ready to use. A Graph is not safe for
// concurrent use and must not change once a Pipeline was made from it.
type Graph struct {
	nodes map[string]*node
	order []*node
	links []Link
}

// Add adds a node named name running e.
func (g *Graph) Add(name string, e Element) error {
	return g.add(name, e, "")
}

func (g *Graph) add(name string, e Element, factory string) error {
	if name == "" {
		return &GraphError{Err: ErrUnknownNode, Detail: "empty node name"}
	}
	if g.nodes[name] != nil {
		return &GraphError{Nodes: []string{name}, Err: ErrDuplicateNode}
	}
	if kindOf(e) == "" {
		return &GraphError{Nodes: []string{name}, Err: ErrNotElement, Detail: fmt.Sprintf("%T", e)}
	}
	if g.nodes == nil {
		g.nodes = map[string]*node{}
	}
	n := &node{name: name, elem: e, factory: factory}
	g.nodes[name] = n
	g.order = append(g.order, n)
	return nil
}

// Link links from's next output to to's next input with default options.
func (g *Graph) Link(from, to string) error { return g.LinkWith(from, to, LinkOptions{}) }

// LinkWith links from's next output to to's next input.
func (g *Graph) LinkWith(from, to string, opts LinkOptions) error {
	f, t := g.nodes[from], g.nodes[to]
	switch {
	case f == nil && t == nil:
		return &GraphError{Nodes: []string{from, to}, Err: ErrUnknownNode}
	case f == nil:
		return &GraphError{Nodes: []string{from}, Err: ErrUnknownNode}
	case t == nil:
		return &GraphError{Nodes: []string{to}, Err: ErrUnknownNode}
	}
	for _, li := range f.outs {
		if g.links[li].To == to {
			return &GraphError{Nodes: []string{from, to}, Err: ErrDuplicateLink}
		}
	}
	if opts.Capacity < 0 {
		return &GraphError{Nodes: []string{from, to}, Err: ErrTooManyLinks, Detail: fmt.Sprintf("negative capacity %d", opts.Capacity)}
	}
	g.links = append(g.links, Link{From: from, To: to, Options: opts})
	f.outs = append(f.outs, len(g.links)-1)
	t.ins = append(t.ins, len(g.links)-1)
	return nil
}

// Chain links each named node to the next with default options.
func (g *Graph) Chain(names ...string) error {
	for i := 1; i < len(names); i++ {
		if err := g.Link(names[i-1], names[i]); err != nil {
			return err
		}
	}
	return nil
}

// Nodes returns the node names in the order added.
func (g *Graph) Nodes() []string {
	s := make([]string, len(g.order))
	for i, n := range g.order {
		s[i] = n.name
	}
	return s
}

// Links returns the links in the order added.
func (g *Graph) Links() []Link { return append([]Link(nil), g.links...) }

// Element returns the element of the named node, or nil.
func (g *Graph) Element(name string) Element {
	if n := g.nodes[name]; n != nil {
		return n.elem
	}
	return nil
}

// Factory returns the registry factory name a node was made with (by the
// launch parser), or "".
func (g *Graph) Factory(name string) string {
	if n := g.nodes[name]; n != nil {
		return n.factory
	}
	return ""
}

// Validate checks the graph before it runs: no cycle, every node's link
// counts within its [PadSpec], and every link joining compatible types. All
// problems found are returned joined; each is a [*GraphError] naming its
// nodes.
func (g *Graph) Validate() error {
	if len(g.order) == 0 {
		return &GraphError{Err: ErrEmpty}
	}
	var errs []error
	for _, n := range g.order {
		ps := padSpecOf(n.elem)
		errs = append(errs, checkCount(n.name, "input", len(n.ins), ps.MinIn, ps.MaxIn))
		errs = append(errs, checkCount(n.name, "output", len(n.outs), ps.MinOut, ps.MaxOut))
	}
	for _, l := range g.links {
		_, out := padTypesOf(g.nodes[l.From].elem)
		in, _ := padTypesOf(g.nodes[l.To].elem)
		if out != AnyType && in != AnyType && out != in {
			errs = append(errs, &GraphError{Nodes: []string{l.From, l.To}, Err: ErrIncompatible,
				Detail: fmt.Sprintf("output type %s, input type %s", out, in)})
		}
	}
	if cyc := g.cycle(); cyc != nil {
		errs = append(errs, &GraphError{Nodes: cyc, Err: ErrCycle})
	}
	return errors.Join(errs...)
}

func checkCount(name, what string, have, lo, hi int) error {
	plural := func(n int) string {
		if n == 1 {
			return what
		}
		return what + "s"
	}
	switch {
	case have < lo:
		return &GraphError{Nodes: []string{name}, Err: ErrUnlinked, Detail: fmt.Sprintf("needs %d %s, has %d", lo, plural(lo), have)}
	case hi != Unlimited && have > hi:
		return &GraphError{Nodes: []string{name}, Err: ErrTooManyLinks, Detail: fmt.Sprintf("accepts %d %s, has %d", hi, plural(hi), have)}
	}
	return nil
}

// cycle returns the nodes of one cycle, first node repeated at the end, or
// nil.
func (g *Graph) cycle() []string {
	const (
		white = iota
		grey
		black
	)
	color := map[*node]int{}
	var stack []*node
	var found []string
	var visit func(n *node) bool
	visit = func(n *node) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, li := range n.outs {
			m := g.nodes[g.links[li].To]
			switch color[m] {
			case grey:
				i := len(stack) - 1
				for stack[i] != m {
					i--
				}
				for _, s := range stack[i:] {
					found = append(found, s.name)
				}
				found = append(found, m.name)
				return true
			case white:
				if visit(m) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range g.order {
		if color[n] == white && visit(n) {
			return found
		}
	}
	return nil
}

// topo returns the nodes in topological order (sources first). The graph
// must be acyclic.
func (g *Graph) topo() []*node {
	indeg := map[*node]int{}
	for _, n := range g.order {
		indeg[n] = len(n.ins)
	}
	var out, queue []*node
	for _, n := range g.order {
		if indeg[n] == 0 {
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		out = append(out, n)
		for _, li := range n.outs {
			m := g.nodes[g.links[li].To]
			if indeg[m]--; indeg[m] == 0 {
				queue = append(queue, m)
			}
		}
	}
	return out
}
