// Package elements holds Parallax's built-in pipeline elements and registers
// them in [pipeline.Default] when imported:
//
//	testsrc    source: buffers of a size and pattern, optionally paced
//	filesrc    source: a file's bytes in blocks
//	filesink   sink: writes buffers to a file
//	fakesink   sink: releases buffers (optionally slowly)
//	identity   transform: passes buffers (optionally failing or sleeping)
//	checksum   transform or sink: CRC-32C or FNV-1a over the payload stream
//	tee        one input to many outputs (O(1) clones)
//	queue      bounded buffer between threads, optionally leaky
//	funnel     many inputs to one output
//	ratelimit  transform: caps buffers/s or bytes/s
//
// Each element type is exported with its configuration as fields, for graphs
// built in Go; on launch lines the same settings are properties
// (parallax inspect lists them).
package elements
