package roudi

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/BurntSushi/toml"
)

//go:embed default.toml
var defaultTOML []byte

// A Config is the router's configuration, read from TOML (see default.toml
// for every key and its default).
//
// Use [DefaultConfig], [ParseConfig] or [LoadConfig]; those fill in every
// default. The zero value is not a valid configuration. A Config is a plain
// value: copying it copies the Access slice by reference, so use
// [Config.Clone] before modifying a copy. It is not safe for concurrent
// modification; concurrent reads are fine.
type Config struct {
	// Domain names an isolated router instance. Empty in a file means
	// $PARALLAX_DOMAIN, else "default".
	Domain string `toml:"domain"`
	// Socket is the control socket path; empty means derived from Domain
	// (see [Config.SocketPath]).
	Socket string `toml:"socket"`
	// RuntimeDir holds the domain's lock file, <RuntimeDir>/<Domain>.lock,
	// which the router holds for its whole life: one router per domain
	// name, whatever its socket. Empty means the default socket directory
	// ($XDG_RUNTIME_DIR/parallax or /tmp/parallax-<uid>), also when Socket
	// names another place. See [Config.LockPath].
	RuntimeDir string `toml:"runtime_dir"`
	// SocketDirMode is the permission mode of the socket's directory.
	SocketDirMode FileMode `toml:"socket_dir_mode"`
	// SocketMode is the permission mode of the socket file. Connecting
	// needs write permission on it: "0666" (with a socket_dir_mode that
	// lets others search the directory, e.g. "0711") opens the router to
	// every uid, and the Access rules decide what each may do.
	SocketMode FileMode `toml:"socket_mode"`
	// LogLevel is "debug", "info", "warn" or "error".
	LogLevel string `toml:"log_level"`

	Limits Limits       `toml:"limits"`
	Rings  Rings        `toml:"rings"`
	Access []AccessRule `toml:"access"`

	Memory     Memory     `toml:"memory"`     // config_memory.go
	Publishers Publishers `toml:"publishers"` // owned model sizing
}

// Limits bounds the router's registry. Every count is a total over the
// domain. Requests beyond a limit fail with [parallax.ErrLimit].
type Limits struct {
	MaxClients     int `toml:"max_clients"`     // connected client processes (≤ 65535)
	MaxTopics      int `toml:"max_topics"`      // topics with at least one endpoint
	MaxPublishers  int `toml:"max_publishers"`  // publishers
	MaxSubscribers int `toml:"max_subscribers"` // subscribers
	MaxConnections int `toml:"max_connections"` // publisher–subscriber rings
	// MaxHistory bounds the history a publisher keeps and a subscriber asks
	// for.
	MaxHistory int `toml:"max_history"`
	// MaxQueueCapacity bounds the ring capacity a subscriber asks for.
	MaxQueueCapacity int `toml:"max_queue_capacity"`
	// MaxMessageSize bounds a topic's payload type size and a loan; 0
	// means no bound beyond MaxPublisherBytes.
	MaxMessageSize ByteSize `toml:"max_message_size"`
	// MaxRequestsPerSecond and RequestBurst rate-limit each control
	// connection (a token bucket): requests beyond them are refused with
	// [parallax.ErrLimit], and a client that keeps sending regardless is
	// disconnected (server_guard.go).
	MaxRequestsPerSecond int `toml:"max_requests_per_second"`
	RequestBurst         int `toml:"request_burst"`
	// Owned memory model bounds (config_memory.go): the data segment bytes
	// of one publisher, the bytes of every owned segment of the domain,
	// and one publisher's data segments.
	MaxPublisherBytes       ByteSize `toml:"max_publisher_bytes"`
	MaxSharedBytes          ByteSize `toml:"max_shared_bytes"`
	MaxSegmentsPerPublisher int      `toml:"max_segments_per_publisher"`
}

// Rings configures the per-connection rings.
type Rings struct {
	// DefaultCapacity is the ring capacity of a subscriber that asks for
	// none; a power of two.
	DefaultCapacity int `toml:"default_capacity"`
	// MaxCapacity is the largest ring capacity; a power of two.
	MaxCapacity int `toml:"max_capacity"`
}

// HugepageMode selects the page size of publishers' data segments
// ([Publishers.Hugepages]).
type HugepageMode string

// Hugepage modes.
const (
	// HugepagesAuto uses 2 MiB pages when the host has enough free, normal
	// pages otherwise. An empty mode in a file means auto.
	HugepagesAuto HugepageMode = "auto"
	// HugepagesNever always uses normal pages.
	HugepagesNever HugepageMode = "never"
)

// An AccessRule restricts who may publish and subscribe on matching topics.
//
// Topic is an exact topic name or a prefix glob ending in "*" ("frames/*"
// or "*"). When several rules match a topic, the most specific wins: an
// exact rule, else the longest prefix. For each direction, a rule whose uid
// and gid lists are both empty leaves that direction unrestricted;
// otherwise a client is allowed when its uid or its gid is listed. Root is
// not special. Topics no rule matches are open to everyone.
type AccessRule struct {
	Topic         string   `toml:"topic"`
	PublishUIDs   []uint32 `toml:"publish_uids"`
	PublishGIDs   []uint32 `toml:"publish_gids"`
	SubscribeUIDs []uint32 `toml:"subscribe_uids"`
	SubscribeGIDs []uint32 `toml:"subscribe_gids"`
}

// A ConfigError reports a bad configuration key: unknown, malformed or out
// of range. Key is the dotted TOML path, with array indices
// ("pools[2].chunk_size").
type ConfigError struct {
	Key     string
	Problem string
	err     error // what errors.Is matches ([ErrRemovedKey]), or nil
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Problem }

// Unwrap returns [ErrRemovedKey] for a key of the removed shared memory
// model, else nil.
func (e *ConfigError) Unwrap() error { return e.err }

var defaultConfig = sync.OnceValues(func() (*Config, error) {
	c := new(Config)
	if err := decodeConfig(defaultTOML, c); err != nil {
		return nil, fmt.Errorf("parse embedded default.toml: %w", err)
	}
	return c, nil
})

// DefaultConfig returns the embedded default configuration (default.toml),
// with Domain resolved from $PARALLAX_DOMAIN. Each call returns a new copy.
// It panics if the embedded file is broken, which a test rules out.
func DefaultConfig() *Config {
	c, err := defaultConfig()
	if err != nil {
		panic("roudi: " + err.Error())
	}
	c = c.Clone()
	c.resolve()
	return c
}

// ParseConfig parses a TOML configuration. Keys the data leaves out keep
// their defaults from [DefaultConfig]; [[access]], when present, replaces
// the default list as a whole. Unknown keys are errors (a [*ConfigError]
// naming the key), and so are the keys of the deleted shared memory model
// ([ErrRemovedKey]). ParseConfig does not validate: call
// [Config.Validate].
func ParseConfig(data []byte) (*Config, error) {
	def, err := defaultConfig()
	if err != nil {
		return nil, err
	}
	c := def.Clone()
	c.Access = nil
	if err := decodeConfig(data, c); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	c.resolve()
	return c, nil
}

// LoadConfig reads, parses and validates the TOML file at path.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("load config %q: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("load config %q: %w", path, err)
	}
	return c, nil
}

func decodeConfig(data []byte, c *Config) error {
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(c)
	if err != nil {
		return err
	}
	errs := removedKeys(md, c)
	for _, k := range md.Undecoded() {
		if isRemovedKey(k) {
			continue // reported once by removedKeys
		}
		errs = append(errs, &ConfigError{Key: k.String(), Problem: "unknown key"})
	}
	return errors.Join(errs...)
}

// resolve fills in values that depend on the environment or default per
// entry.
func (c *Config) resolve() {
	if c.Domain == "" {
		c.Domain = os.Getenv("PARALLAX_DOMAIN")
	}
	if c.Domain == "" {
		c.Domain = "default"
	}
	if c.Memory.Model == "" {
		c.Memory.Model = ModelOwned
	}
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	n := *c
	n.Access = make([]AccessRule, len(c.Access))
	for i, r := range c.Access {
		n.Access[i] = AccessRule{
			Topic:         r.Topic,
			PublishUIDs:   slices.Clone(r.PublishUIDs),
			PublishGIDs:   slices.Clone(r.PublishGIDs),
			SubscribeUIDs: slices.Clone(r.SubscribeUIDs),
			SubscribeGIDs: slices.Clone(r.SubscribeGIDs),
		}
	}
	if len(c.Access) == 0 {
		n.Access = nil
	}
	return &n
}

// SocketPath returns the control socket path: Socket when set, else
// $PARALLAX_SOCKET when set, else <dir>/<domain>.sock where dir is
// $XDG_RUNTIME_DIR/parallax or /tmp/parallax-<uid>.
func (c *Config) SocketPath() string {
	if c.Socket != "" {
		return c.Socket
	}
	if s := os.Getenv("PARALLAX_SOCKET"); s != "" {
		return s
	}
	return filepath.Join(defaultRuntimeDir(), c.Domain+".sock")
}

// LockPath returns the path of the domain lock: <RuntimeDir>/<Domain>.lock,
// in the default socket directory when RuntimeDir is empty. It does not
// depend on Socket, so two routers of one domain collide whatever their
// sockets.
func (c *Config) LockPath() string {
	dir := c.RuntimeDir
	if dir == "" {
		dir = defaultRuntimeDir()
	}
	return filepath.Join(dir, c.Domain+".lock")
}

// defaultRuntimeDir is $XDG_RUNTIME_DIR/parallax, else /tmp/parallax-<uid>.
func defaultRuntimeDir() string {
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
		return filepath.Join(x, "parallax")
	}
	return filepath.Join(os.TempDir(), "parallax-"+strconv.Itoa(os.Getuid()))
}

// SlogLevel returns LogLevel as a [slog.Level] (info when unrecognised;
// Validate rejects those).
func (c *Config) SlogLevel() slog.Level {
	switch c.LogLevel {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
