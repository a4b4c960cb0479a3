package elements

import (
	"context"
	"time"
)

// pacer sleeps until a due time computed from a start instant, reusing one
// timer (no allocation per wait).
type pacer struct {
	start time.Time
	timer *time.Timer
}

// waitUntil sleeps until start+offset or ctx is done.
func (p *pacer) waitUntil(ctx context.Context, offset time.Duration) error {
	if p.start.IsZero() {
		p.start = time.Now()
	}
	d := time.Until(p.start.Add(offset))
	if d <= 0 {
		return nil
	}
	return p.sleep(ctx, d)
}

func (p *pacer) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d)
	}
	select {
	case <-p.timer.C:
		return nil
	case <-ctx.Done():
		p.timer.Stop()
		return context.Cause(ctx)
	}
}

// rateOffset is the instant, after the start, at which item n is due at
// rate items per second.
func rateOffset(n uint64, rate float64) time.Duration {
	return time.Duration(float64(n) / rate * float64(time.Second))
}
