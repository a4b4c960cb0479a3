package gateway

import (
	"crypto/tls"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// TestRawConfigFor: core-NATS imports take the raw connection with plain
// nats:// URLs and user/password or token authentication (from the URL or
// the nats.Options), and nats.go for everything else.
func TestRawConfigFor(t *testing.T) {
	t.Parallel()
	imp := []Topic{{Name: "t"}}
	for _, tc := range []struct {
		name string
		opts Options
		why  string // "" = raw
		want []rawServer
	}{
		{"plain", Options{NATSURL: "nats://h:1234", Import: imp}, "", []rawServer{{addr: "h:1234"}}},
		{"no scheme, default port, two servers", Options{NATSURL: "a, nats://b:5", Import: imp}, "",
			[]rawServer{{addr: "a:4222"}, {addr: "b:5"}}},
		{"user and password in the URL", Options{NATSURL: "nats://u:p@h:1", Import: imp}, "", []rawServer{{addr: "h:1", user: "u", pass: "p"}}},
		{"token in the URL", Options{NATSURL: "nats://tok@h:1", Import: imp}, "", []rawServer{{addr: "h:1", token: "tok"}}},
		{"user and password options", Options{NATSURL: "nats://h:1", Import: imp, NATSOptions: []nats.Option{nats.UserInfo("u", "p")}}, "",
			[]rawServer{{addr: "h:1", user: "u", pass: "p"}}},
		{"token option", Options{NATSURL: "nats://h:1", Import: imp, NATSOptions: []nats.Option{nats.Token("x")}}, "",
			[]rawServer{{addr: "h:1", token: "x"}}},
		{"empty URLs skipped", Options{NATSURL: " ,nats://h:1, ", Import: imp}, "", []rawServer{{addr: "h:1"}}},
		{"forced", Options{NATSURL: "nats://h:1", Import: imp, ImportWithNATSGo: true}, "Options.ImportWithNATSGo", nil},
		{"JetStream", Options{NATSURL: "nats://h:1", Import: imp, Stream: "s"}, "JetStream imports use nats.go", nil},
		{"no import", Options{NATSURL: "nats://h:1", Export: imp}, "no import", nil},
		{"tls URL", Options{NATSURL: "nats://h:1,tls://h:2", Import: imp}, `scheme "tls"`, nil},
		{"websocket", Options{NATSURL: "ws://h:1", Import: imp}, `scheme "ws"`, nil},
		{"TLS option", Options{NATSURL: "nats://h:1", Import: imp, NATSOptions: []nats.Option{nats.Secure(&tls.Config{})}}, "TLS", nil},
		{"nkey", Options{NATSURL: "nats://h:1", Import: imp, NATSOptions: []nats.Option{nats.Nkey("UABC", func([]byte) ([]byte, error) { return nil, nil })}},
			"nkey or JWT authentication", nil},
		{"token handler", Options{NATSURL: "nats://h:1", Import: imp, NATSOptions: []nats.Option{nats.TokenHandler(func() string { return "x" })}},
			"token or user handler", nil},
	} {
		c, why := rawConfigFor(&tc.opts, "id")
		require.Equal(t, tc.why, why, tc.name)
		if why == "" {
			require.Equal(t, tc.want, c.servers, tc.name)
			require.Equal(t, "parallax-gateway id import", c.name)
			require.Equal(t, nats.DefaultPingInterval, c.pingInterval)
		}
	}
}
