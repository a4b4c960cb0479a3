// Package segment provides the shared-memory segments Parallax lays its
// pools and rings over: a [Segment] is a mapping of bytes plus a [Handle]
// describing it to another process. The router creates every segment;
// clients receive its fd over SCM_RIGHTS and [Open] it.
//
// Backends:
//
//   - [NewHeap]: anonymous private memory, for pipelines within one process.
//   - [NewMemfd]: a memfd named "parallax-<name>", created with
//     MFD_CLOEXEC|MFD_ALLOW_SEALING|MFD_NOEXEC_SEAL, sized, sealed with
//     F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL so no peer can resize it (a
//     shrink would SIGBUS every mapper), and prefaulted with MAP_POPULATE.
//   - [NewHugepage]: the same on MFD_HUGETLB pages (2 MiB, or 1 GiB when
//     configured), size rounded up to the hugepage size. When the host has
//     too few free hugepages it falls back to base pages and records why
//     ([Mapped.FallbackReason]), unless the caller required hugepages, in
//     which case it fails with an error wrapping [parallax.ErrNotSupported].
//     It never maps with MAP_NORESERVE, so a missing page is an error at
//     creation, never a SIGBUS at first touch.
//   - [CreateFile] and [OpenFile]: a mapped regular file (persistence,
//     hugetlbfs mounts).
//
// Memory picture of one fd-backed segment shared by three processes:
//
//	router (creator)             publisher                 subscriber
//	fd rw ──┐                    fd rw (SCM_RIGHTS)        fd ro (reopened /proc/self/fd/N)
//	        ▼                          ▼                         ▼
//	   ┌─────────────────────── memfd "parallax-<name>" ───────────────────────┐
//	   │ sealed: SHRINK | GROW | SEAL (| EXEC)        file size = Handle.Size  │
//	   └───────────────────────────────────────────────────────────────────────┘
//	mapping (MAP_SHARED):
//	   0                                        Len()          mapping length
//	   ├──────────────── Bytes() ────────────────┤░░░░ rounding ░░░░┤
//	   └ page-aligned base: offset 0 is aligned to PageSize(), so any offset
//	     the layout packages align to 8 or 64 bytes is aligned in memory too.
//
//	  Len() is the file size; the mapping is that size rounded up to
//	  PageSize() (4 KiB, or the hugepage size). Munmap always uses the
//	  rounded length: unmapping a hugetlb mapping with an unrounded length
//	  fails with EINVAL and leaks it.
//
// A segment holds raw bytes only. Whatever lays a structure over them
// (mempool, ringbuf) writes its own magic number and layout version at a
// fixed offset; a segment has no header of its own, so the creator and every
// opener agree on offsets without knowing the backend.
//
// Read-only enforcement is the kernel's: subscribers get an fd reopened
// O_RDONLY ([Mapped.ReadOnlyFile]); mmap(PROT_WRITE) and mprotect to
// PROT_WRITE on it fail with EACCES, so a subscriber cannot corrupt payload
// bytes even by mistake.
//
// Ownership: every segment owns its mapping and fd. Close is idempotent,
// unmaps and closes; a runtime cleanup does the same for a segment that
// becomes unreachable without Close, as a backstop only. Slices returned by
// Bytes alias the mapping and are invalid after Close.
package segment
