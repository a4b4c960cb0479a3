package core

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"

	"github.com/parallax-ipc/parallax"
)

// Who may resume as a client.
//
// At Welcome the core issues each client a random resume token (from
// RouterOptions.Rand, crypto/rand by default), which only that client is
// sent, and a ClientIdentity (its SO_PEERCRED pid and uid and the SHA-256
// of the token) that the server keeps where it survives a router crash and
// where no client can write it: a file beside the domain lock
// (server_identity.go), never in shared memory. A restarted router is given the identities of the ids
// it reserved (AdoptClients). A ResumeClient is accepted only from the same
// process (pid and uid equal to the recorded ones: a live process's pid is
// not reused) presenting the token (against pid reuse after the original
// died). Anything else is refused with parallax.ErrPermissionDenied and
// logged, and the id stays reserved for the real client.

// ResumeTokenSize is the length of a resume token in bytes.
const ResumeTokenSize = 32

// A ResumeToken is a client's secret proof of identity for resuming.
type ResumeToken [ResumeTokenSize]byte

// ClientIdentity is what a restarted router checks a resuming client
// against.
type ClientIdentity struct {
	Client    ClientID
	PID       int32
	UID       uint32
	TokenHash [sha256.Size]byte // SHA-256 of the ResumeToken
}

func (r *Router) newToken() (ResumeToken, error) {
	var t ResumeToken
	_, err := io.ReadFull(r.rand, t[:])
	return t, err
}

func identityOf(c *client, tok ResumeToken) ClientIdentity {
	return ClientIdentity{Client: c.id, PID: c.pid, UID: c.uid, TokenHash: sha256.Sum256(tok[:])}
}

// checkResumer decides whether client c (connected under a new id) may
// resume as id presenting tok.
func (r *Router) checkResumer(c *client, id ClientID, tok ResumeToken) error {
	want, ok := r.identities[id]
	var why string
	switch {
	case !ok || want.Client != id:
		why = "no identity was recorded for it"
	case c.pid != want.PID || c.uid != want.UID:
		why = fmt.Sprintf("it was pid %d uid %d, the resumer is pid %d uid %d", want.PID, want.UID, c.pid, c.uid)
	default:
		h := sha256.Sum256(tok[:])
		if subtle.ConstantTimeCompare(h[:], want.TokenHash[:]) == 1 {
			return nil
		}
		why = "wrong resume token"
	}
	r.log(slog.LevelWarn, "resume refused", slog.Int("client", int(id)), slog.Int("pid", int(c.pid)),
		slog.Int("uid", int(c.uid)), slog.String("reason", why))
	return fmt.Errorf("%w: may not resume as client %d: %s", parallax.ErrPermissionDenied, id, why)
}
