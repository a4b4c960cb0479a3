// Package hugepages reports what hugepages the host offers and decides
// whether a shared-memory segment should use them.
//
// The kernel describes each hugepage pool under
// /sys/kernel/mm/hugepages/hugepages-<size>kB: nr_hugepages (the persistent
// pool), free_hugepages, resv_hugepages (promised to mappings but not yet
// faulted in), surplus_hugepages and nr_overcommit_hugepages. [Stat] reads
// them into an [Info]; [Sizes] lists the pools; [Reserve] resizes a pool
// when the process is privileged, reading the result back because the kernel
// may allocate fewer pages than asked on fragmented memory.
//
// [Decide] is the policy the segment package follows: given a [Mode] and a
// segment size it returns a [Decision] naming the page size to use and, when
// hugepages are not used, a human-readable reason naming the sysfs file to
// look at. The reservation of hugetlb pages happens at mmap time, so a
// Decision is advice, not a guarantee: the segment package still falls back
// when mmap fails with ENOMEM.
//
// A [Host] reads a sysfs tree rooted anywhere (tests point it at a fake tree
// in a temporary directory); the package-level functions use the real one.
package hugepages
