package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Errors of the element registry.
var (
	ErrUnknownElement   = errors.New("unknown element")
	ErrDuplicateFactory = errors.New("element already registered")
	ErrBadFactory       = errors.New("invalid element factory")
)

// A Factory describes an element type and makes instances of it.
type Factory struct {
	// Name is the element name used on launch lines (lowercase, no
	// spaces, for example "testsrc").
	Name string
	// Kind is "source", "transform", "sink" or another word describing
	// the pads (for listings).
	Kind string
	// Description is one sentence for listings.
	Description string
	// Properties the element accepts. "name" is reserved for the node
	// name.
	Properties []PropSpec
	// New makes an element from property values (defaults filled in).
	New func(p *Props) (Element, error)
	// Origin names where the factory came from: "builtin" or a plugin.
	Origin string
}

// Registry holds element factories by name. The zero value is an empty
// registry ready to use; it is safe for concurrent use and must not be
// copied.
type Registry struct {
	mu sync.RWMutex
	m  map[string]*Factory
}

// Default is the registry the built-in elements (package
// pipeline/elements) and plugins register into.
var Default = &Registry{}

// Register adds f. It fails when the name is taken, or f is incomplete or
// has a default value that does not parse.
func (r *Registry) Register(f Factory) error {
	if f.Name == "" || f.New == nil || strings.ContainsAny(f.Name, " \t\n!=.\"'") {
		return fmt.Errorf("register element %q: %w: needs a name without spaces or !=.\" and a New function", f.Name, ErrBadFactory)
	}
	seen := map[string]bool{}
	for _, s := range f.Properties {
		if s.Name == "name" || seen[s.Name] || s.Name == "" {
			return fmt.Errorf("register element %q: %w: property %q reserved, empty or repeated", f.Name, ErrBadFactory, s.Name)
		}
		seen[s.Name] = true
		if _, err := ParseValue(s, s.Default); err != nil {
			return fmt.Errorf("register element %q: %w: default %q of property %q: %v", f.Name, ErrBadFactory, s.Default, s.Name, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]*Factory{}
	}
	if old := r.m[f.Name]; old != nil {
		return fmt.Errorf("register element %q (%s): %w by %s", f.Name, f.Origin, ErrDuplicateFactory, old.Origin)
	}
	r.m[f.Name] = &f
	return nil
}

// MustRegister is Register that panics on error, for init functions.
func (r *Registry) MustRegister(f Factory) {
	if err := r.Register(f); err != nil {
		panic(err)
	}
}

// Lookup returns the named factory.
func (r *Registry) Lookup(name string) (*Factory, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.m[name]
	return f, ok
}

// Factories returns every factory sorted by name.
func (r *Registry) Factories() []*Factory {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fs := make([]*Factory, 0, len(r.m))
	for _, f := range r.m {
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(a, b *Factory) int { return strings.Compare(a.Name, b.Name) })
	return fs
}

// Suggest returns the registered name closest to name, or "".
func (r *Registry) Suggest(name string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.m))
	for n := range r.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return closest(name, names)
}

// NewProps returns f's properties at their defaults.
func (f *Factory) NewProps() *Props {
	p := &Props{element: f.Name, specs: f.Properties, vals: map[string]any{}, set: map[string]bool{}}
	for _, s := range f.Properties {
		v, _ := ParseValue(s, s.Default) // checked by Register
		p.vals[s.Name] = v
	}
	return p
}

// Property returns the named property spec.
func (f *Factory) Property(name string) (PropSpec, bool) {
	for _, s := range f.Properties {
		if s.Name == name {
			return s, true
		}
	}
	return PropSpec{}, false
}

// Make creates an element of the named factory with properties given as
// text. Errors wrap [ErrUnknownElement] (with a suggestion) or are
// [*PropertyError]s.
func (r *Registry) Make(name string, props map[string]string) (Element, error) {
	f, ok := r.Lookup(name)
	if !ok {
		if s := r.Suggest(name); s != "" {
			return nil, fmt.Errorf("%w %q (did you mean %q?)", ErrUnknownElement, name, s)
		}
		return nil, fmt.Errorf("%w %q", ErrUnknownElement, name)
	}
	p := f.NewProps()
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := p.Set(k, props[k]); err != nil {
			return nil, err
		}
	}
	return f.New(p)
}
