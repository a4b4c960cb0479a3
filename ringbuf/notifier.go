package ringbuf

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/sys"
)

// DefaultSpin is how long [Notifier.Wait] and [Waiter.Wait] keep checking
// readiness before they sleep when [WaitOptions.Spin] is zero: long enough
// to catch a producer that is mid-burst, short next to a futex sleep and
// wake-up (tens of microseconds).
const DefaultSpin = 5 * time.Microsecond

// maxSpinPause bounds the spin-wait hints between two readiness checks of
// a spinning Wait (4: about 80 ns on current x86).
const maxSpinPause = 4

// busyPollCheckEvery is how many readiness checks a busy poll makes between
// looks at the context, the close word and the clock (and a
// [runtime.Gosched], so same-process producers get a core).
const busyPollCheckEvery = 128

// WaitOptions tune [Notifier.Wait]. The zero value is the default: a short
// spin ([DefaultSpin]), then sleep without a timeout (only the context ends
// the wait).
type WaitOptions struct {
	// Spin is how long Wait keeps checking readiness (with spin-wait hints
	// between checks) before it yields the processor once, checks again
	// and sleeps on the futex: a time on the monotonic clock, so it means
	// the same on every machine. Zero means [DefaultSpin]; a negative
	// value disables spinning and the yield (sleep after one check). The spin ends early at the timeout or deadline; a context
	// cancelled without a deadline is noticed within a few checks.
	Spin time.Duration
	// BusyPoll makes Wait never sleep: it polls until ready, the context is
	// done, the notifier closes or the deadline passes. It burns a core and
	// is meant for dedicated cores only. Spin does not apply: a busy poll
	// is a spin without a budget.
	BusyPoll bool
	// Timeout, when positive, bounds the wait; Deadline, when non-zero,
	// bounds it too. The earlier of the two applies. Running out returns an
	// error wrapping [parallax.ErrTimeout].
	Timeout  time.Duration
	Deadline time.Time
}

// NotifierStats are counters kept in the notifier's shared block.
type NotifierStats struct {
	Wakes  uint64 // FutexWake system calls made by producers
	Sleeps uint64 // FutexWait system calls made by the consumer
}

// A Notifier is the wake-up channel of one consumer: a 32-bit futex sequence
// word and a "sleeping" flag in a 128-byte shared block. A consumer shares one
// Notifier across all the rings it reads (its wait set); every producer of
// those rings calls [Notifier.Notify] after pushing.
//
// Use [FormatNotifier] or [AttachNotifier]; the zero value is invalid.
// Notify and Close are safe for concurrent use from any number of goroutines
// and processes. Wait must be called by one goroutine at a time (the
// consumer). A Notifier must not be copied; it owns no resources and the
// caller keeps the region mapped while it is used.
type Notifier struct {
	plan     spinPlan // the consumer's: what its last yield showed
	mem      []byte
	closed   *shmWord32
	seq      *shmWord32
	sleeping *shmWord32
	wakes    *shmWord64
	sleeps   *shmWord64
}

// FormatNotifier initialises a notifier in mem (8-byte aligned, at least
// [NotifierSize] bytes) and returns it.
func FormatNotifier(mem []byte) (*Notifier, error) {
	if len(mem) < NotifierSize {
		return nil, fmt.Errorf("format notifier: region of %d bytes, need %d: %w", len(mem), NotifierSize, ErrInvalidArgument)
	}
	if !aligned8(mem) {
		return nil, fmt.Errorf("format notifier: region is not 8-byte aligned: %w", ErrInvalidArgument)
	}
	mem = mem[:NotifierSize]
	clear(mem) // not shared yet; the magic store publishes it
	word32(mem, nOffVersion).Store(LayoutVersion)
	// Release: AttachNotifier's magic load sees the stores above.
	word64(mem, nOffMagic).Store(notifierMagic)
	return newNotifier(mem), nil
}

// AttachNotifier returns the notifier formatted in mem after checking its
// magic number and layout version. Errors wrap [parallax.ErrCorrupt].
func AttachNotifier(mem []byte) (*Notifier, error) {
	if len(mem) < NotifierSize {
		return nil, fmt.Errorf("attach notifier: region of %d bytes, need %d: %w", len(mem), NotifierSize, parallax.ErrCorrupt)
	}
	if !aligned8(mem) {
		return nil, fmt.Errorf("attach notifier: region is not 8-byte aligned: %w", parallax.ErrCorrupt)
	}
	// Acquire: pairs with FormatNotifier's magic store.
	if m := word64(mem, nOffMagic).Load(); m != notifierMagic {
		return nil, fmt.Errorf("attach notifier: bad magic %#x: %w", m, parallax.ErrCorrupt)
	}
	if v := word32(mem, nOffVersion).Load(); v != LayoutVersion {
		return nil, fmt.Errorf("attach notifier: layout version %d, want %d: %w", v, LayoutVersion, parallax.ErrCorrupt)
	}
	return newNotifier(mem[:NotifierSize]), nil
}

func newNotifier(mem []byte) *Notifier {
	return &Notifier{
		mem:      mem,
		closed:   word32(mem, nOffClosed),
		seq:      word32(mem, nOffSeq),
		sleeping: word32(mem, nOffSleeping),
		wakes:    word64(mem, nOffWakes),
		sleeps:   word64(mem, nOffSleeps),
	}
}

// Notify tells the consumer that a ring it reads has new entries. Call it
// after the push. It makes the wake system call only when the consumer has
// announced that it may sleep; otherwise it is one atomic load. Notify
// allocates nothing.
func (n *Notifier) Notify() error {
	// Dekker with Wait: the producer's tail store (seq-cst) precedes this
	// load; the consumer stores Sleeping (seq-cst) before re-checking the
	// rings. At least one side sees the other. The CAS lets one producer
	// make the syscall; the consumer re-arms the flag before each sleep.
	if n.sleeping.Load() == 0 || !n.sleeping.CompareAndSwap(1, 0) {
		return nil
	}
	return n.wake()
}

func (n *Notifier) wake() error {
	// Seq-cst add: a consumer that sampled Seq before announcing sleep now
	// fails FutexWait with EAGAIN or is woken below.
	n.seq.Add(1)
	n.wakes.Add(1) // statistics only
	if _, err := sys.FutexWake(rawWord32(n.seq), math.MaxInt32); err != nil {
		return fmt.Errorf("wake consumer: %w", err)
	}
	return nil
}

// Wait returns nil once ready reports true. ready is the consumer's check of
// its rings (for example "some ring is non-empty"); it must be cheap and have
// no side effects the consumer cannot repeat.
//
// Wait first calls ready for up to opts.Spin, then once more after
// yielding the processor (sched_yield), then announces that it sleeps,
// calls ready once more and sleeps on the futex until a producer's
// [Notifier.Notify], [Notifier.Close], ctx's cancellation or the timeout
// wakes it (each sleep is also bounded by a 100 ms slice, after which it
// re-checks, so a producer that died between pushing and notifying costs
// latency, not a hang). With opts.BusyPoll it never sleeps and
// never pauses: it calls ready back to back.
//
// It returns an error wrapping ctx.Err() when ctx is done, wrapping
// [parallax.ErrTimeout] when the timeout or deadline (including ctx's)
// passes, and wrapping [os.ErrClosed] once the notifier is closed. When ready
// is true at the first or a spinning check, Wait allocates nothing and makes
// no system call.
func (n *Notifier) Wait(ctx context.Context, ready func() bool, opts WaitOptions) error {
	if ready() {
		return nil
	}
	if opts.BusyPoll {
		// No pauses between looks: a busy poll owns its core and wants
		// the entry the moment it lands.
		return n.busyPoll(ctx, ctx.Done(), ready, opts.deadline())
	}
	done := ctx.Done()
	deadline := opts.deadline()
	if n.plan.spinThenYield(opts.spinBudget(ctx, deadline), done, ready) {
		return nil
	}
	return n.sleep(ctx, done, ready, deadline)
}

// spinBudget is how long to spin: Spin (zero: DefaultSpin), cut short by
// the deadline and ctx's. A budget of zero or less means no spin.
func (o WaitOptions) spinBudget(ctx context.Context, deadline time.Time) time.Duration {
	spin := o.Spin
	if spin == 0 {
		spin = DefaultSpin
	}
	if spin < 0 {
		return 0
	}
	if cd, ok := ctx.Deadline(); ok && (deadline.IsZero() || cd.Before(deadline)) {
		deadline = cd
	}
	if !deadline.IsZero() {
		spin = min(spin, time.Until(deadline))
	}
	return spin
}

// deadline is the earlier of Deadline and now + Timeout (zero: none).
func (o WaitOptions) deadline() time.Time {
	deadline := o.Deadline
	if o.Timeout > 0 {
		if d := time.Now().Add(o.Timeout); deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
	}
	return deadline
}

func (n *Notifier) busyPoll(ctx context.Context, done <-chan struct{}, ready func() bool, deadline time.Time) error {
	for {
		for range busyPollCheckEvery {
			if ready() {
				return nil
			}
		}
		if err := n.waitDone(ctx, done, deadline); err != nil {
			return err
		}
		runtime.Gosched()
	}
}

// waitDone returns the error that ends a wait, if any.
func (n *Notifier) waitDone(ctx context.Context, done <-chan struct{}, deadline time.Time) error {
	// Any ordering: once set, Closed stays set.
	if n.closed.Load() != 0 {
		return errNotifierClosed
	}
	select {
	case <-done:
		if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("wait for notification: %w: %w", parallax.ErrTimeout, err)
		}
		return fmt.Errorf("wait for notification: %w", ctx.Err())
	default:
	}
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return errWaitTimeout
	}
	return nil
}

func (n *Notifier) sleep(ctx context.Context, done <-chan struct{}, ready func() bool, deadline time.Time) (err error) {
	if done != nil {
		// Registered only on the sleeping path: it allocates.
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(fired)
			_ = n.wake()
		})
		defer func() {
			if !stop() {
				<-fired // the callback touches the region; finish it first
			}
		}()
	}
	// The flag is ours again when we leave (a producer may have cleared it).
	defer n.sleeping.Store(0)
	for {
		// Sample Seq before announcing: any wake after the announcement
		// changes Seq, so the FutexWait below cannot miss it.
		seen := n.seq.Load()
		// Dekker: store Sleeping (seq-cst), then re-check the rings.
		n.sleeping.Store(1)
		if ready() {
			return nil
		}
		if err := n.waitDone(ctx, done, deadline); err != nil {
			return err
		}
		timeout := waitSlice
		if !deadline.IsZero() {
			timeout = min(timeout, max(time.Until(deadline), time.Microsecond))
		}
		n.sleeps.Add(1) // statistics only
		// nil, EAGAIN, EINTR and ETIMEDOUT all mean "look again".
		if err := sys.FutexWait(rawWord32(n.seq), seen, timeout); err != nil &&
			!errors.Is(err, sys.EAGAIN) && !errors.Is(err, sys.EINTR) && !errors.Is(err, sys.ETIMEDOUT) {
			return fmt.Errorf("wait for notification: %w", err)
		}
	}
}

// Close marks the notifier closed and wakes the consumer: its current and
// future Waits return an error wrapping [os.ErrClosed] (unless ready is
// already true). Notify keeps working. Close is idempotent and safe to
// call from any process.
func (n *Notifier) Close() error {
	// Seq-cst swap: a sleeper that loads Closed after its wake sees it.
	if n.closed.Swap(1) == 0 {
		return n.wake()
	}
	return nil
}

// Closed reports whether [Notifier.Close] was called (by any process).
func (n *Notifier) Closed() bool { return n.closed.Load() != 0 }

// Sleeping reports whether the consumer has announced that it may sleep.
func (n *Notifier) Sleeping() bool { return n.sleeping.Load() != 0 }

// Stats returns the notifier's counters.
func (n *Notifier) Stats() NotifierStats {
	return NotifierStats{Wakes: n.wakes.Load(), Sleeps: n.sleeps.Load()}
}
