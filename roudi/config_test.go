package roudi

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDefaultConfigValidates(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	require.NoError(t, c.Validate())
	require.NotEmpty(t, c.Domain)
	require.Equal(t, 4*KiB, c.Publishers.DefaultMaxPayload)
	require.Equal(t, 256, c.Rings.DefaultCapacity)
	require.Equal(t, FileMode(0o700), c.SocketDirMode)
	require.Equal(t, "0700", c.SocketDirMode.String())

	// Each call returns an independent copy.
	c.Publishers.DefaultMaxLoans = 1
	require.Equal(t, 4, DefaultConfig().Publishers.DefaultMaxLoans)
}

func TestParseConfigOverlaysDefaults(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig([]byte(`
domain = "lab"
[limits]
max_topics = 7
[publishers]
default_max_payload = "1MiB"
[[access]]
topic = "frames/*"
publish_uids = [1000]
`))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.Equal(t, "lab", c.Domain)
	require.Equal(t, 7, c.Limits.MaxTopics)
	require.Equal(t, DefaultConfig().Limits.MaxClients, c.Limits.MaxClients)
	require.Equal(t, MiB, c.Publishers.DefaultMaxPayload)
	require.Len(t, c.Access, 1)
	require.Equal(t, []uint32{1000}, c.Access[0].PublishUIDs)

	empty, err := ParseConfig(nil)
	require.NoError(t, err)
	require.Equal(t, DefaultConfig().Publishers, empty.Publishers)
}

func TestParseConfigUnknownKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, key string }{
		{`colour = "red"`, "colour"},
		{"[limits]\nmax_topicz = 3", "limits.max_topicz"},
		{"[publishers]\ndefault_max_payload = 64\nhuge = true", "publishers.huge"},
		{"[nope]\nx = 1", "nope"},
	} {
		_, err := ParseConfig([]byte(tc.in))
		require.Error(t, err, tc.in)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, tc.in)
		require.Equal(t, tc.key, ce.Key)
		require.Contains(t, err.Error(), "unknown key")
	}
}

func TestParseConfigSyntaxErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`domain = `,
		"[publishers]\ndefault_max_payload = \"4KB\"",
		"[publishers]\ndefault_max_payload = -1",
		"[publishers]\ndefault_max_payload = true",
		`socket_dir_mode = "rwx"`,
		"[limits]\nmax_topics = \"many\"",
		"[[access]]\ntopic = \"a\"\npublish_uids = [-1]",
	} {
		_, err := ParseConfig([]byte(in))
		require.Error(t, err, in)
	}
}

func TestParseByteSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want ByteSize
		err  bool
	}{
		{"0", 0, false},
		{"128", 128, false},
		{"128B", 128, false},
		{"128 b", 128, false},
		{"4KiB", 4 * KiB, false},
		{"4kib", 4 * KiB, false},
		{" 1 MiB ", MiB, false},
		{"2GiB", 2 * GiB, false},
		{"1TiB", TiB, false},
		{"", 0, true},
		{"KiB", 0, true},
		{"4KB", 0, true},
		{"4K", 0, true},
		{"4.5MiB", 0, true},
		{"-4", 0, true},
		{"99999999999999999999", 0, true},
		{"17179869184GiB", 0, true}, // 2^34 GiB overflows
	} {
		got, err := ParseByteSize(tc.in)
		if tc.err {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	require.Equal(t, "4 KiB", (4 * KiB).String())
	require.Equal(t, "100 B", ByteSize(100).String())
	require.Equal(t, "1536 KiB", (MiB + 512*KiB).String())
}

func TestByteSizeIntegerAndModeForms(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig([]byte("socket_dir_mode = 0o750\n[publishers]\ndefault_max_payload = 4096\nhugepages = \"never\""))
	require.NoError(t, err)
	require.Equal(t, FileMode(0o750), c.SocketDirMode)
	require.Equal(t, 4*KiB, c.Publishers.DefaultMaxPayload)
	require.Equal(t, HugepagesNever, c.Publishers.Hugepages)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		mutate  func(c *Config)
		key     string
		problem string
	}{
		{"empty domain", func(c *Config) { c.Domain = "" }, "domain", "must not be empty"},
		{"domain slash", func(c *Config) { c.Domain = "a/b" }, "domain", "only letters"},
		{"domain dot", func(c *Config) { c.Domain = ".." }, "domain", "only letters"},
		{"long socket", func(c *Config) { c.Socket = "/" + string(make([]byte, 120)) }, "socket", "at most 107"},
		{"dir mode", func(c *Config) { c.SocketDirMode = 0o500 }, "socket_dir_mode", "owner rwx"},
		{"dir mode bits", func(c *Config) { c.SocketDirMode = 0o1700 }, "socket_dir_mode", "within 0777"},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, "log_level", `got "loud"`},
		{"max clients zero", func(c *Config) { c.Limits.MaxClients = 0 }, "limits.max_clients", "positive"},
		{"max clients big", func(c *Config) { c.Limits.MaxClients = 70000 }, "limits.max_clients", "at most 65535"},
		{"max topics", func(c *Config) { c.Limits.MaxTopics = -1 }, "limits.max_topics", "positive"},
		{"max pubs", func(c *Config) { c.Limits.MaxPublishers = 0 }, "limits.max_publishers", "positive"},
		{"max subs", func(c *Config) { c.Limits.MaxSubscribers = 0 }, "limits.max_subscribers", "positive"},
		{"max conns", func(c *Config) { c.Limits.MaxConnections = 0 }, "limits.max_connections", "positive"},
		{"max history", func(c *Config) { c.Limits.MaxHistory = -1 }, "limits.max_history", "negative"},
		{"max queue", func(c *Config) { c.Limits.MaxQueueCapacity = 0 }, "limits.max_queue_capacity", "positive"},
		{"ring default pow2", func(c *Config) { c.Rings.DefaultCapacity = 100 }, "rings.default_capacity", "power of two"},
		{"ring default 1", func(c *Config) { c.Rings.DefaultCapacity = 1 }, "rings.default_capacity", "power of two"},
		{"ring max pow2", func(c *Config) { c.Rings.MaxCapacity = 3000 }, "rings.max_capacity", "power of two"},
		{"ring default > max", func(c *Config) { c.Rings.DefaultCapacity = 8192 }, "rings.default_capacity", "must not exceed rings.max_capacity"},
		{"ring default > queue", func(c *Config) { c.Limits.MaxQueueCapacity = 128 }, "rings.default_capacity", "limits.max_queue_capacity"},
		{"access empty topic", func(c *Config) { c.Access = []AccessRule{{PublishUIDs: []uint32{1}}} }, "access[0].topic", "must not be empty"},
		{"access glob middle", func(c *Config) { c.Access = []AccessRule{{Topic: "a*b", PublishUIDs: []uint32{1}}} }, "access[0].topic", "last character"},
		{"access duplicate", func(c *Config) {
			c.Access = []AccessRule{{Topic: "a", PublishUIDs: []uint32{1}}, {Topic: "a", SubscribeGIDs: []uint32{1}}}
		}, "access[1].topic", "duplicates access[0].topic"},
		{"access nothing", func(c *Config) { c.Access = []AccessRule{{Topic: "a"}} }, "access[0]", "restricts nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := DefaultConfig()
			tc.mutate(c)
			err := c.Validate()
			require.Error(t, err)
			var found bool
			for _, e := range unjoin(err) {
				var ce *ConfigError
				if errors.As(e, &ce) && ce.Key == tc.key && strings.Contains(ce.Problem, tc.problem) {
					found = true
				}
			}
			require.True(t, found, "no error for key %s containing %q in:\n%v", tc.key, tc.problem, err)
		})
	}
}

func TestValidateMessage(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.Publishers.DefaultMaxPayload = 100
	require.EqualError(t, c.Validate(), "publishers.default_max_payload: must be a multiple of 64 between 64 B and 1 GiB, got 100")
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.LogLevel = "x"
	c.Publishers.DefaultMaxLoans = 0
	c.Rings.MaxCapacity = 7
	require.Len(t, unjoin(c.Validate()), 3)
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	require.NoError(t, os.WriteFile(good, []byte("domain = \"x\"\n[rings]\ndefault_capacity = 64\n"), 0o600))
	c, err := LoadConfig(good)
	require.NoError(t, err)
	require.Equal(t, 64, c.Rings.DefaultCapacity)

	bad := filepath.Join(dir, "bad.toml")
	require.NoError(t, os.WriteFile(bad, []byte("[rings]\ndefault_capacity = 63\n"), 0o600))
	_, err = LoadConfig(bad)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "rings.default_capacity", ce.Key)
	require.Contains(t, err.Error(), bad)

	_, err = LoadConfig(filepath.Join(dir, "missing.toml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestSocketPath(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.Socket = "/run/x.sock"
	require.Equal(t, "/run/x.sock", c.SocketPath())
	c.Socket = ""
	c.Domain = "lab"
	require.Equal(t, "lab.sock", filepath.Base(c.SocketPath()))
}

// unjoin flattens an errors.Join tree.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
