// Package parallax is the root of Parallax, a framework for zero-copy,
// multi-process data pipelines over shared memory.
//
// A router daemon (package roudi, binary parallax-roudi) owns every shared
// memory segment and carves it into size-class chunk pools. Publishers loan a
// chunk, write into it in place and publish it; subscribers receive a view of
// the very same bytes. Only 8-byte [ChunkRef] values travel through lock-free
// rings, so payload bytes are never copied.
//
// This package holds what every layer shares: the error values that survive
// the trip over the control socket, the [ChunkRef] encoding and the version
// numbers. It imports no other Parallax package.
package parallax
