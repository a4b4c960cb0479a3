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
// # Pids and namespaces
//
// Monitors report by pid, and the pids are those of the caller's (the
// router's) pid namespace: the numbers SO_PEERCRED gives it for its
// clients. A pid names one live process of a namespace and is only reused
// after that process is reaped; the router watches a pid only while a
// client with that pid is connected. What each monitor guarantees:
//
//   - "pidfd" waits on the client's own pidfd: whatever the namespaces, it
//     reports only that process's exit.
//   - "ebpf" in the initial pid namespace: the tracer names every exiting
//     process by its init-namespace pid, the router's own numbers. A record
//     for a watched pid taken after the watch began is that client's exit
//     and is reported at once. A record taken before the watch began (the
//     number's previous owner, read late) is not trusted: the client's
//     pidfd decides.
//   - "ebpf" in a child pid namespace (a container): the tracer uses
//     bpf_get_ns_current_pid_tgid with the router's namespace and records
//     only exits of processes of exactly that namespace, by their pid
//     there; a host or sibling container process is never taken for a
//     client, whatever its number. Clients in a namespace nested below the
//     router's are not traced: every watch there also waits on the client's
//     pidfd, so their exits are reported at pidfd latency. When that
//     program cannot be loaded (kernel before 5.7), there is no eBPF
//     monitor: [ModeEBPF] fails and [ModeAuto] falls back to pidfd with the
//     reason.
//
// A pid of 0 (a client in a namespace the router cannot see) cannot be
// watched ([ErrInvalidPID]).
//
// This package is the only importer of github.com/cilium/ebpf.
package procmon
