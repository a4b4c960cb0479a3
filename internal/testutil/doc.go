// Package testutil holds test helpers shared by Parallax packages: feature
// probes paired with Must* skips (in the style of internal/testenv), a
// TestMain wrapper that fails the run on leaked fds or memfd mappings, and a
// reproducible random seed.
//
// Privileged tests skip with a message naming what is missing, unless
// PARALLAX_TEST_ROOT=1 is set (as CI does), in which case a missing
// privilege or feature fails the test instead.
package testutil
