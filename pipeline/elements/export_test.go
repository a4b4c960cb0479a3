package elements

// IPCSinkLoanAttempts returns how many chunk loans s's allocator tried
// (for tests: one per buffer when loans wait instead of polling).
func IPCSinkLoanAttempts(s *IPCSink) uint64 {
	if s.alloc == nil {
		return 0
	}
	return s.alloc.attempts.Load()
}
