package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// got is a frame copied out of the reader's buffer.
type got struct {
	op                   rawOp
	sid                  uint64
	header, payload, arg string
}

func copyFrame(f *rawFrame) got {
	return got{op: f.op, sid: f.sid, header: string(f.header), payload: string(f.payload), arg: string(f.arg)}
}

// rawStream is a server's side of a session: every operation, MSG and HMSG
// with and without a reply subject, an empty payload, and one message
// larger than the smallest buffer (which makes the reader grow it).
func rawStream() ([]byte, []got) {
	big := strings.Repeat("0123456789abcdef", 700) // 11200 bytes
	hdr := "NATS/1.0\r\nX-A: b\r\n\r\n"
	var b bytes.Buffer
	var want []got
	b.WriteString(`INFO {"server_id":"x","max_payload":1048576}` + "\r\n")
	want = append(want, got{op: rawInfo, arg: `{"server_id":"x","max_payload":1048576}`})
	b.WriteString("+OK\r\n")
	want = append(want, got{op: rawOK})
	b.WriteString("MSG parallax.a 1 5\r\nhello\r\n")
	want = append(want, got{op: rawMsg, sid: 1, payload: "hello"})
	fmt.Fprintf(&b, "HMSG parallax.b 2 reply.to %d %d\r\n%sworld\r\n", len(hdr), len(hdr)+5, hdr)
	want = append(want, got{op: rawMsg, sid: 2, header: hdr, payload: "world"})
	b.WriteString("PING\r\n")
	want = append(want, got{op: rawPing})
	b.WriteString("msg parallax.a  1 _INBOX.x 0\r\n\r\n") // lower case, two spaces, empty
	want = append(want, got{op: rawMsg, sid: 1})
	fmt.Fprintf(&b, "MSG parallax.a 3 %d\r\n%s\r\n", len(big), big)
	want = append(want, got{op: rawMsg, sid: 3, payload: big})
	fmt.Fprintf(&b, "HMSG parallax.b 2 %d %d\r\n%s\r\n", len(hdr), len(hdr), hdr)
	want = append(want, got{op: rawMsg, sid: 2, header: hdr})
	b.WriteString("PONG\n") // a bare LF is accepted
	want = append(want, got{op: rawPong})
	b.WriteString("-ERR 'Permissions Violation for Subscription to \"x\"'\r\n")
	want = append(want, got{op: rawErr, arg: `'Permissions Violation for Subscription to "x"'`})
	return b.Bytes(), want
}

// chunks is a reader returning its chunks one per Read (at most len(p)
// bytes each).
type chunks struct{ c [][]byte }

func (r *chunks) Read(p []byte) (int, error) {
	for len(r.c) > 0 && len(r.c[0]) == 0 {
		r.c = r.c[1:]
	}
	if len(r.c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.c[0])
	r.c[0] = r.c[0][n:]
	return n, nil
}

func readAll(t *testing.T, rd io.Reader, bufSize int) []got {
	t.Helper()
	p := newRawReader(rd, make([]byte, bufSize), defaultMaxPayload)
	var out []got
	var f rawFrame
	for {
		err := p.next(&f)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, copyFrame(&f))
	}
}

// TestRawReaderSplitReads: every frame is decoded whole wherever the reads
// split the stream: at every byte boundary (two reads), one byte per read,
// and with a buffer smaller than a message (grown) or barely larger
// (partial frames moved to the front).
func TestRawReaderSplitReads(t *testing.T) {
	t.Parallel()
	stream, want := rawStream()
	for _, size := range []int{maxControlLine, 12 << 10, rawBufSize} {
		for k := range len(stream) + 1 {
			rd := &chunks{c: [][]byte{bytes.Clone(stream[:k]), bytes.Clone(stream[k:])}}
			require.Equal(t, want, readAll(t, rd, size), "buffer %d, split at %d", size, k)
		}
		ones := &chunks{}
		for _, c := range stream {
			ones.c = append(ones.c, []byte{c})
		}
		require.Equal(t, want, readAll(t, ones, size), "buffer %d, one byte per read", size)
	}
}

// TestRawReaderMalformed: every malformed frame is an error wrapping
// errNATSProtocol that names what was wrong, whatever the split.
func TestRawReaderMalformed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, msg string }{
		{"MSG a 1 x\r\nabc\r\n", `MSG size "x" on sid 1: want a decimal number of at most 1048576 (the max payload)`},
		{"MSG a 1 -3\r\nabc\r\n", `MSG size "-3"`},
		{"MSG a 1 99999999999999999999999\r\n", `want a decimal number of at most`},
		{"MSG a 1 1048577\r\n", `MSG size "1048577" on sid 1: want a decimal number of at most 1048576`},
		{"HMSG a 1 10 5\r\nabcde\r\n", `HMSG header size "10" on sid 1: want a decimal number of at most 5 (the total size)`},
		{"MSG a x 3\r\nabc\r\n", `MSG sid "x": want a decimal number`},
		{"MSG a 1\r\n", `MSG with 2 arguments, want 3 or 4`},
		{"MSG a 1 r s 3\r\nabc\r\n", `MSG with 5 arguments, want 3 or 4`},
		{"HMSG a 1 3\r\nabc\r\n", `HMSG with 3 arguments, want 4 or 5`},
		{"MSG a 1 3\r\nabcXY", `3-byte message on sid 1 not followed by CRLF`},
		{"BOGUS stuff\r\n", `unknown operation "BOGUS stuff"`},
		{"\x00\x01\x02\r\n", `unknown operation`},
		{strings.Repeat("M", maxControlLine+10), `longer than 4096 bytes`},
		{"MSG " + strings.Repeat("s", maxControlLine) + " 1 3\r\nabc\r\n", "4096"},
		{"INFO " + strings.Repeat("{", maxInfoLine) + "\r\n", "65536"},
	} {
		for _, split := range []int{1, 3, len(tc.in)} {
			rd := &chunks{}
			for b := []byte(tc.in); len(b) > 0; b = b[min(split, len(b)):] {
				rd.c = append(rd.c, bytes.Clone(b[:min(split, len(b))]))
			}
			p := newRawReader(rd, nil, defaultMaxPayload)
			var f rawFrame
			err := p.next(&f)
			require.ErrorIs(t, err, errNATSProtocol, "%q", clip([]byte(tc.in)))
			require.ErrorContains(t, err, tc.msg)
		}
	}
}

// cycle is an endless reader repeating b.
type cycle struct {
	b   []byte
	off int
}

func (r *cycle) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

// TestRawReaderNoAllocs: reading messages allocates nothing, with frames
// split across reads and moved to the front of the buffer.
func TestRawReaderNoAllocs(t *testing.T) {
	payload := strings.Repeat("x", 1000)
	var b bytes.Buffer
	for range 7 {
		fmt.Fprintf(&b, "MSG parallax.t 1 %d\r\n%s\r\n", len(payload), payload)
	}
	fmt.Fprintf(&b, "HMSG parallax.t 1 12 %d\r\nNATS/1.0\r\n\r\n%s\r\n", 12+len(payload), payload)
	p := newRawReader(&cycle{b: b.Bytes()}, make([]byte, 64<<10+123), defaultMaxPayload)
	var f rawFrame
	n := 0
	allocs := testing.AllocsPerRun(20000, func() {
		if err := p.next(&f); err != nil || f.op != rawMsg || len(f.payload) != len(payload) {
			t.Fatalf("frame %d: %v, op %d, %d bytes", n, err, f.op, len(f.payload))
		}
		n++
	})
	require.Zero(t, allocs)
}
