package rpc

import "github.com/parallax-ipc/parallax/internal/ownedpub"

// FlagEnd marks the last response of a call in the chunk header's flags.
const FlagEnd uint32 = 1 << 31

// A Chunk is a loaned request ([Client.Loan]) or response ([Server.Loan])
// in the sender's own data segment. Write it, then send it exactly once;
// a chunk that is not sent goes back with Release. It must not be copied
// after use.
type Chunk struct {
	l ownedpub.Loan
}

// Bytes returns the chunk's payload to write.
func (c *Chunk) Bytes() []byte { return c.l.Bytes() }

// Truncate shortens the payload sent to n bytes (0 ≤ n ≤ len(Bytes())).
func (c *Chunk) Truncate(n int) { c.l.Truncate(n) }
