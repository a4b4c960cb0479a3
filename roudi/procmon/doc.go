// Package procmon tells the router when a client process has exited, so that
// everything the process held can be reclaimed at once, whatever killed it.
//
// A [Monitor] watches the pids it is given with [Monitor.Watch] and reports
// each watched process's exit exactly once on [Monitor.Events]. Two
// implementations exist:
//
//   - "ebpf": a BPF program, assembled in Go (no clang), attached to the raw
//     tracepoint sched_process_exit (no tracefs needed). It filters in the
//     kernel to whole-process exits (the tracepoint's group_dead argument; a
//     multi-threaded process fires it once per thread) and sends the exiting
//     tgid through a BPF ring buffer; a reader goroutine keeps the watched
//     pids. Needs CAP_BPF and CAP_PERFMON (or root). Kill to event takes well
//     under a millisecond.
//   - "pidfd": one goroutine per watched pid parked in the Go netpoller on
//     the process's pidfd (from SO_PEERPIDFD when the caller has it, else
//     pidfd_open). Works unprivileged on Linux 5.3+.
//
// [New] with [ModeAuto] tries eBPF and falls back to pidfd;
// [FallbackReason] says why. The router treats control-socket EOF as a third,
// independent signal, so a Monitor is an accelerator and a safety net for
// processes whose socket outlives them (inherited by a forked child), never
// the only source of truth.
//
// Monitors report by pid. A pid is only reused after the process is reaped;
// the router watches a pid only while a client with that pid is connected.
//
// This package is the only importer of github.com/cilium/ebpf.
package procmon
