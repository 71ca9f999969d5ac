/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * limiter.h holds the map layouts shared by xdp_limiter.c and the Go loader
 * (pkg/xdp). bpf2go generates the Go side from these definitions (-type), so
 * a change here is a change to the loader's wire format: run `make -C bpf`.
 */
#ifndef STOA_LIMITER_H
#define STOA_LIMITER_H

#include "stoa_bpf.h"

/* stoa_config.flags */
#define STOA_F_COUNT_CONNS (1U << 0) /* only TCP SYN (without ACK) takes a token */
#define STOA_F_HAS_DENY    (1U << 1) /* the deny trie may hold entries: look it up */
#define STOA_F_HAS_BLOCKS  (1U << 2) /* the blocks trie may hold entries: look it up */

/* stoa_config is the single entry of the "config" array. */
struct stoa_config {
	/* Nanoseconds per token (1e9 / rate); 0 disables the per-source bucket. */
	__u64 ns_per_token;
	/* How far a source's theoretical arrival time may run ahead of now:
	 * (burst - 1) * ns_per_token. */
	__u64 burst_ns;
	/* When non-zero, used instead of bpf_ktime_get_ns(). Tests only. */
	__u64 now_ns;
	__u32 flags;
	__u32 _pad;
};

/* stoa_ports is the single entry of the "ports" array: one bit per
 * destination port (bit p%64 of word p/64), set for protected ports. A
 * bitmap in an array is one inlined lookup and one cache line per packet,
 * where a hash map costs a hash and two or three lines. */
struct stoa_ports {
	__u64 bits[1024];
};

/* stoa_addr is a source address: IPv6, or IPv4 mapped as ::ffff:a.b.c.d. */
struct stoa_addr {
	__u8 addr[16];
};

/* stoa_lpm_key keys the "deny" and "blocks" tries. The data starts with a
 * family word (byte 0 is 4 or 6, bytes 1-3 are zero) so that IPv6 prefixes
 * never match IPv4 sources (::/0 means "all IPv6", not "everything"); the
 * address follows, IPv4 in addr[0:4]. A /n prefix has prefixlen 32+n. */
struct stoa_lpm_key {
	__u32 prefixlen;
	__u8 family;
	__u8 _pad[3];
	__u8 addr[16];
};

/* stoa_source is a source's bucket in the "sources" LRU map. The bucket is
 * kept as a GCRA theoretical arrival time, which is a token bucket of depth
 * burst refilled at rate, stored in one word so it can be updated with a
 * single compare-and-swap. */
struct stoa_source {
	__u64 tat;     /* ns (bpf_ktime_get_ns clock) */
	__u64 passed;  /* packets that took a token */
	__u64 dropped; /* packets dropped for want of one */
};

/* stoa_counters is the single (per-CPU) entry of the "counters" map. */
struct stoa_counters {
	__u64 passed;        /* limited traffic that passed every check */
	__u64 dropped_rate;  /* dropped: source out of tokens */
	__u64 dropped_deny;  /* dropped: source in the deny list */
	__u64 dropped_block; /* dropped: source blocked until a time not yet reached */
	__u64 other;         /* passed: not limited (not IP, not TCP/UDP, unprotected port, unsupported IPv6 header) */
	__u64 fragment;      /* passed: non-first IP fragment (no L4 header) */
	__u64 malformed;     /* passed: truncated or invalid headers (the kernel drops these itself) */
};

#endif /* STOA_LIMITER_H */
