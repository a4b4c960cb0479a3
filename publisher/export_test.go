package publisher

// LoanWaitSleeping returns the LoanWait calls of p asleep now, so a test
// can act while one sleeps instead of guessing with a sleep.
func LoanWaitSleeping(p *Publisher) int { return p.own.Load().eng.Stats().Sleeping }
