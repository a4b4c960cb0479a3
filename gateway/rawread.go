package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// The reader of the raw import connection (rawimport.go): the server's
// side of the NATS client protocol (INFO, MSG, HMSG, PING, PONG, +OK,
// -ERR) parsed from one reusable buffer. A frame's slices alias the
// buffer: a message's payload goes from the kernel's read straight to the
// importer, which copies it into a loaned chunk, and nothing is allocated
// per message. When the buffer ends inside a frame, the bytes of that
// frame (only) are moved to the front before the next read; a frame
// larger than the buffer grows it, up to the server's max payload.
//
// Everything the server sends is validated before use: control lines are
// bounded (maxControlLine, maxInfoLine), sizes are decimal and at most the
// server's max payload, a message's payload must be followed by CRLF, and
// an unknown operation is an error. Any violation is an error wrapping
// errNATSProtocol that names what was wrong; the connection is then closed.

const (
	// rawBufSize is the initial size of the read buffer.
	rawBufSize = 256 << 10
	// rawMinRead is the least free space kept at the buffer's end for a
	// read: below it, a partial frame is moved to the front first.
	rawMinRead = 32 << 10
	// maxControlLine bounds the control line of every operation but INFO
	// (nats.go's MAX_CONTROL_LINE_SIZE).
	maxControlLine = 4096
	// maxInfoLine bounds an INFO line (it lists the cluster's URLs).
	maxInfoLine = 64 << 10
	// maxServerPayload caps the max payload a server may announce (the
	// NATS server's own limit is 64 MiB).
	maxServerPayload = 64 << 20
	// maxZeroReads bounds reads returning neither bytes nor an error.
	maxZeroReads = 100
)

// errNATSProtocol wraps every violation of the NATS protocol found by the
// raw import connection.
var errNATSProtocol = errors.New("NATS protocol violation")

// rawOp is the operation of a frame from the server.
type rawOp uint8

const (
	rawMsg  rawOp = iota + 1 // MSG or HMSG
	rawPing                  // PING
	rawPong                  // PONG
	rawOK                    // +OK
	rawErr                   // -ERR
	rawInfo                  // INFO
)

// rawFrame is one frame from the server. Its slices alias the reader's
// buffer and are valid until the reader's next call.
type rawFrame struct {
	op      rawOp
	sid     uint64
	header  []byte // an HMSG's NATS headers, nil for MSG
	payload []byte // a message's payload (after the headers)
	arg     []byte // INFO's JSON, -ERR's text
}

// rawReader parses frames from rd. It is used by one goroutine.
type rawReader struct {
	rd         io.Reader
	buf        []byte
	r, w       int // unparsed bytes are buf[r:w]
	maxPayload int // bound on a message's length, headers included
}

// newRawReader reads from rd into buf (reused; rawBufSize when nil or
// smaller than maxControlLine), bounding messages by maxPayload until
// the server announces its own.
func newRawReader(rd io.Reader, buf []byte, maxPayload int) *rawReader {
	if len(buf) < maxControlLine {
		buf = make([]byte, rawBufSize)
	}
	return &rawReader{rd: rd, buf: buf, maxPayload: maxPayload}
}

// setMaxPayload sets the bound on a message's length: n as the server
// announced it, the default when n is not positive, at most
// maxServerPayload.
func (p *rawReader) setMaxPayload(n int64) {
	switch {
	case n <= 0:
		p.maxPayload = defaultMaxPayload
	case n > maxServerPayload:
		p.maxPayload = maxServerPayload
	default:
		p.maxPayload = int(n)
	}
}

// next reads the next frame into f.
func (p *rawReader) next(f *rawFrame) error {
	for {
		if p.r == p.w {
			p.r, p.w = 0, 0
		}
		need, err := p.parse(f)
		if err != nil || need == 0 {
			return err
		}
		if err := p.fill(need); err != nil {
			return err
		}
	}
}

// fill reads until the buffer holds at least need bytes from r, moving
// the partial frame to the front or growing the buffer first if it has no
// room for them.
func (p *rawReader) fill(need int) error {
	if need > len(p.buf) {
		nb := make([]byte, max(need, min(2*len(p.buf), p.maxPayload+maxControlLine+2)))
		p.w = copy(nb, p.buf[p.r:p.w])
		p.r, p.buf = 0, nb
	} else if p.r > 0 && len(p.buf)-p.r < max(need, rawMinRead) {
		p.w = copy(p.buf, p.buf[p.r:p.w])
		p.r = 0
	}
	for zero := 0; p.w-p.r < need; {
		n, err := p.rd.Read(p.buf[p.w:])
		p.w += n
		switch {
		case n > 0:
			zero = 0
		case err != nil:
			return err
		default:
			if zero++; zero > maxZeroReads {
				return io.ErrNoProgress
			}
		}
	}
	return nil
}

// parse decodes the frame at buf[r:w] into f and consumes it, returning
// need 0, or returns how many bytes from r it needs at least.
func (p *rawReader) parse(f *rawFrame) (need int, err error) {
	b := p.buf[p.r:p.w]
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		limit := maxControlLine
		if hasOp(b, "INFO") {
			limit = maxInfoLine
		}
		if len(b) >= limit {
			return 0, fmt.Errorf("control line %q... longer than %d bytes: %w", clip(b), limit, errNATSProtocol)
		}
		return len(b) + 1, nil
	}
	line := bytes.TrimSuffix(b[:nl], []byte{'\r'})
	op, rest := cutField(line)
	*f = rawFrame{}
	switch {
	case eqOp(op, "MSG"), eqOp(op, "HMSG"):
		if nl >= maxControlLine {
			return 0, fmt.Errorf("%s line of %d bytes, limit %d: %w", op, nl+1, maxControlLine, errNATSProtocol)
		}
		hdr, total, err := p.msgArgs(f, op, rest)
		if err != nil {
			return 0, err
		}
		end := nl + 1 + total + 2
		if len(b) < end {
			return end, nil
		}
		if b[end-2] != '\r' || b[end-1] != '\n' {
			return 0, fmt.Errorf("%d-byte message on sid %d not followed by CRLF (got %q): %w", total, f.sid, b[end-2:end], errNATSProtocol)
		}
		data := b[nl+1 : nl+1+total]
		f.op, f.payload = rawMsg, data[hdr:]
		if hdr > 0 {
			f.header = data[:hdr]
		}
		p.r += end
		return 0, nil
	case eqOp(op, "PING"):
		f.op = rawPing
	case eqOp(op, "PONG"):
		f.op = rawPong
	case eqOp(op, "+OK"):
		f.op = rawOK
	case eqOp(op, "-ERR"):
		f.op, f.arg = rawErr, rest
	case eqOp(op, "INFO"):
		f.op, f.arg = rawInfo, rest
	default:
		return 0, fmt.Errorf("unknown operation %q: %w", clip(line), errNATSProtocol)
	}
	limit := maxControlLine
	if f.op == rawInfo {
		limit = maxInfoLine
	}
	if nl >= limit {
		return 0, fmt.Errorf("%s line of %d bytes, limit %d: %w", op, nl+1, limit, errNATSProtocol)
	}
	p.r += nl + 1
	return 0, nil
}

// msgArgs parses the arguments of MSG (subject sid [reply] size) or HMSG
// (subject sid [reply] header-size total-size) into f.sid and returns the
// header size and the total size.
func (p *rawReader) msgArgs(f *rawFrame, op, args []byte) (hdr, total int, err error) {
	var a [6][]byte
	n := 0
	for len(args) > 0 && n < len(a) {
		a[n], args = cutField(args)
		if len(a[n]) > 0 {
			n++
		}
	}
	headers := len(op) == 4
	lo := 3
	if headers {
		lo = 4
	}
	if n < lo || n > lo+1 || len(bytes.TrimLeft(args, " \t")) > 0 {
		return 0, 0, fmt.Errorf("%s with %d arguments, want %d or %d: %w", op, n, lo, lo+1, errNATSProtocol)
	}
	sid, ok := parseDecimal(a[1], 1<<62)
	if !ok {
		return 0, 0, fmt.Errorf("%s sid %q: want a decimal number: %w", op, clip(a[1]), errNATSProtocol)
	}
	f.sid = uint64(sid)
	total, ok = parseDecimal(a[n-1], p.maxPayload)
	if !ok {
		return 0, 0, fmt.Errorf("%s size %q on sid %d: want a decimal number of at most %d (the max payload): %w",
			op, clip(a[n-1]), sid, p.maxPayload, errNATSProtocol)
	}
	if headers {
		hdr, ok = parseDecimal(a[n-2], total)
		if !ok {
			return 0, 0, fmt.Errorf("%s header size %q on sid %d: want a decimal number of at most %d (the total size): %w",
				op, clip(a[n-2]), sid, total, errNATSProtocol)
		}
	}
	return hdr, total, nil
}

// parseDecimal parses b as a decimal number of at most limit.
func parseDecimal(b []byte, limit int) (int, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > limit {
			return 0, false
		}
	}
	return n, true
}

// cutField returns the first field of b (up to a space or tab) and what
// follows it, without the separators.
func cutField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && b[i] != ' ' && b[i] != '\t' {
		i++
	}
	field, rest = b[:i], b[i:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	return field, rest
}

// eqOp reports whether op is name (upper case), in any case.
func eqOp(op []byte, name string) bool {
	if len(op) != len(name) {
		return false
	}
	for k := range len(op) {
		c := op[k]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != name[k] {
			return false
		}
	}
	return true
}

// hasOp reports whether line starts with operation name (any case).
func hasOp(line []byte, name string) bool {
	return len(line) >= len(name) && eqOp(line[:len(name)], name)
}

// clip shortens b for an error message.
func clip(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}
