// Package plugin loads Parallax element plugins: Go plugins (.so files built
// with `go build -buildmode=plugin`) that export a [Descriptor] under the
// symbol name [Symbol]:
//
//	package main
//
//	var Parallax = plugin.Descriptor{
//		ABI: plugin.ABIVersion, Name: "xor", Version: "1.0.0",
//		Elements: []pipeline.Factory{xorFactory},
//	}
//
// [Load] opens one file, checks the descriptor's ABI version against the
// host's [ABIVersion] and registers the elements into a
// [pipeline.Registry]; [LoadDir] and [LoadPath] scan directories (the
// colon-separated $PARALLAX_PLUGIN_PATH for [LoadEnv]).
//
// Go plugins must be built with the same Go toolchain, the same versions of
// every shared package and the same flags (-race in particular) as the host
// binary; the runtime refuses others with an error naming the package.
// A plugin once opened stays loaded for the life of the process.
package plugin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goplugin "plugin"
	"slices"
	"strings"
	"sync"

	"github.com/parallax-ipc/parallax/pipeline"
)

// ABIVersion is the descriptor ABI this host understands. It changes
// whenever Descriptor or the element interfaces change incompatibly.
const ABIVersion = 1

// Symbol is the name of the exported descriptor variable.
const Symbol = "Parallax"

// EnvPath is the environment variable holding the plugin directories.
const EnvPath = "PARALLAX_PLUGIN_PATH"

// Errors of the loader.
var (
	ErrABI        = errors.New("plugin ABI version mismatch")
	ErrDescriptor = errors.New("invalid plugin descriptor")
)

// A Descriptor describes a plugin and its elements. A plugin exports one as
// a variable named [Symbol]. The zero value is invalid (no ABI, no name).
type Descriptor struct {
	ABI         int    // must equal the host's ABIVersion
	Name        string // unique plugin name, e.g. "xor"
	Version     string // the plugin's own version, e.g. "1.0.0"
	Description string
	// Elements are registered into the host's registry; their Origin is
	// set to "plugin <Name>".
	Elements []pipeline.Factory
}

// Info is what was loaded from one plugin file.
type Info struct {
	Path        string
	Name        string
	Version     string
	Description string
	Elements    []string // element names, sorted
}

// loaded remembers, per registry, which plugin file was registered, so
// loading a file twice is a no-op and two plugins with one name are refused.
var (
	mu     sync.Mutex
	loaded = map[*pipeline.Registry]map[string]Info{} // by plugin name
)

// Loaded returns the plugins registered into r, sorted by name.
func Loaded(r *pipeline.Registry) []Info {
	if r == nil {
		r = pipeline.Default
	}
	mu.Lock()
	defer mu.Unlock()
	var out []Info
	for _, i := range loaded[r] {
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Load opens the plugin at path, checks its descriptor and registers its
// elements into r (nil: pipeline.Default). Either every element is
// registered or none: a name already taken fails the load with an error
// naming both origins.
func Load(path string, r *pipeline.Registry) (Info, error) {
	if r == nil {
		r = pipeline.Default
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Info{}, fmt.Errorf("load plugin %s: %w", path, err)
	}
	p, err := goplugin.Open(abs)
	if err != nil {
		return Info{}, fmt.Errorf("load plugin %s: %w", path, err)
	}
	sym, err := p.Lookup(Symbol)
	if err != nil {
		return Info{}, fmt.Errorf("load plugin %s: %w: no exported %s variable", path, ErrDescriptor, Symbol)
	}
	d, ok := sym.(*Descriptor)
	if !ok {
		return Info{}, fmt.Errorf("load plugin %s: %w: %s is a %T, want plugin.Descriptor", path, ErrDescriptor, Symbol, sym)
	}
	return register(abs, d, r)
}

// Register registers a descriptor's elements into r (nil:
// pipeline.Default) as Load does for a file: statically linked plugins and
// tests use it. path names the origin in listings.
func Register(path string, d *Descriptor, r *pipeline.Registry) (Info, error) {
	if r == nil {
		r = pipeline.Default
	}
	return register(path, d, r)
}

func register(path string, d *Descriptor, r *pipeline.Registry) (Info, error) {
	if d.ABI != ABIVersion {
		return Info{}, fmt.Errorf("load plugin %s (%q): %w: plugin has ABI version %d, this host supports version %d (rebuild the plugin against this Parallax)", path, d.Name, ErrABI, d.ABI, ABIVersion)
	}
	if d.Name == "" || len(d.Elements) == 0 {
		return Info{}, fmt.Errorf("load plugin %s: %w: needs a name and at least one element", path, ErrDescriptor)
	}
	info := Info{Path: path, Name: d.Name, Version: d.Version, Description: d.Description}
	mu.Lock()
	defer mu.Unlock()
	byName := loaded[r]
	if old, ok := byName[d.Name]; ok {
		if old.Path == path {
			return old, nil // loaded already
		}
		return Info{}, fmt.Errorf("load plugin %s: %w: plugin name %q already loaded from %s", path, ErrDescriptor, d.Name, old.Path)
	}
	origin := "plugin " + d.Name
	for _, f := range d.Elements {
		if old, ok := r.Lookup(f.Name); ok {
			return Info{}, fmt.Errorf("load plugin %s: element %q of %s: %w by %s", path, f.Name, origin, pipeline.ErrDuplicateFactory, old.Origin)
		}
	}
	var done []string
	for _, f := range d.Elements {
		f.Origin = origin
		if err := r.Register(f); err != nil {
			// Registration is all or nothing; a registry cannot
			// unregister, so report what stayed registered.
			return Info{}, fmt.Errorf("load plugin %s: %w (registered before the failure: %v)", path, err, done)
		}
		done = append(done, f.Name)
	}
	slices.Sort(done)
	info.Elements = done
	if byName == nil {
		byName = map[string]Info{}
		loaded[r] = byName
	}
	byName[d.Name] = info
	return info, nil
}

// LoadDir loads every *.so file of dir, in name order. It returns what it
// loaded and every failure joined (one bad plugin does not stop the others).
func LoadDir(dir string, r *pipeline.Registry) ([]Info, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("scan plugin directory: %w", err)
	}
	var infos []Info
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".so") {
			continue
		}
		i, err := Load(filepath.Join(dir, e.Name()), r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		infos = append(infos, i)
	}
	return infos, errors.Join(errs...)
}

// LoadPath loads the plugins of every directory of a colon-separated list
// (empty entries are skipped; a missing directory is an error).
func LoadPath(list string, r *pipeline.Registry) ([]Info, error) {
	var infos []Info
	var errs []error
	for _, dir := range filepath.SplitList(list) {
		if dir == "" {
			continue
		}
		i, err := LoadDir(dir, r)
		infos = append(infos, i...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return infos, errors.Join(errs...)
}

// LoadEnv loads the plugins of $PARALLAX_PLUGIN_PATH into r (nil:
// pipeline.Default). Without the variable it loads nothing.
func LoadEnv(r *pipeline.Registry) ([]Info, error) {
	return LoadPath(os.Getenv(EnvPath), r)
}
