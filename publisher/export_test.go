package publisher

// LoanWaitSleeping returns the LoanWait calls of p asleep now, so a test
// can act while one sleeps instead of guessing with a sleep.
func LoanWaitSleeping(p *Publisher) int { return p.own.Load().eng.Stats().Sleeping }

// SmallAsked reports what p did about a small class for loans of n bytes:
// "" never asked, "asking", "granted", "refused" or "unavailable".
func SmallAsked(p *Publisher, n int) string {
	size := 64
	for size < n {
		size *= 2
	}
	i := 0
	for 1<<i < size {
		i++
	}
	return [...]string{smallNone: "", smallAsking: "asking", smallGranted: "granted", smallRefused: "refused", smallUnavailable: "unavailable"}[p.own.Load().grow.small[i].Load()]
}

// CheckUndersized runs p's after-loan check for a loan of n bytes served
// from a class-byte chunk, as a loan whose check runs late would (after a
// grant that happened during the loan).
func CheckUndersized(p *Publisher, n, class int) {
	p.checkUndersized(p.own.Load(), n, class)
}

// WaitUndersized waits until no background request for a small class runs.
func WaitUndersized(p *Publisher) { p.own.Load().grow.bg.Wait() }
