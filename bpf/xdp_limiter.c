//go:build ignore

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdp_limiter.c is stoa's kernel-side source limiter. For traffic to a
 * protected destination port it drops packets from denied sources, from
 * sources blocked until a time not yet reached, and from sources that have
 * run out of tokens; everything else passes untouched. docs/xdp.md describes
 * the parsing rules and the map layout; pkg/xdp loads and drives it.
 */

#include "stoa_bpf.h"
#include "stoa_net.h"
#include "limiter.h"

char __license[] SEC("license") = "Dual BSD/GPL";

#define MAX_SOURCES 65536
#define MAX_PREFIXES 16384
/* How many IPv6 extension headers are walked before giving up (passing). */
#define MAX_IPV6_EXT 8
/* Extension headers may not push the L4 header further than this. */
#define MAX_IPV6_EXT_BYTES 1024

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stoa_config);
} config SEC(".maps");

/* Protected destination ports: a bitmap (see stoa_ports). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stoa_ports);
} ports SEC(".maps");

/* Denied source prefixes (see stoa_lpm_key); the value is unused. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct stoa_lpm_key);
	__type(value, __u8);
} deny SEC(".maps");

/* Blocked source prefixes -> expiry (bpf_ktime_get_ns clock). Userspace
 * stores, for every prefix, the latest expiry of it and of any prefix
 * covering it, so the longest match alone gives the right answer. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct stoa_lpm_key);
	__type(value, __u64);
} blocks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_SOURCES);
	__type(key, struct stoa_addr);
	__type(value, struct stoa_source);
} sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stoa_counters);
} counters SEC(".maps");

enum parse_result {
	PARSE_LIMIT,     /* TCP/UDP with a readable destination port */
	PARSE_OTHER,     /* not something the limiter acts on */
	PARSE_FRAGMENT,  /* non-first fragment: no L4 header */
	PARSE_MALFORMED, /* headers truncated or invalid */
};

struct packet {
	struct stoa_addr src; /* IPv4 mapped as ::ffff:a.b.c.d */
	__u16 dport;          /* host byte order */
	__u8 family;          /* 4 or 6 */
	__u8 conn_start;      /* TCP SYN without ACK (or a first fragment too short to tell) */
	__u8 _pad[4];
};

static __always_inline int parse_l4(void *l4, void *end, __u8 proto, int first_fragment, struct packet *p)
{
	if (proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > end)
			return PARSE_MALFORMED;
		p->dport = bpf_ntohs(udp->dest);
		return PARSE_LIMIT;
	}

	struct tcphdr *tcp = l4;

	if (l4 + 4 > end)
		return PARSE_MALFORMED;
	p->dport = bpf_ntohs(tcp->dest);
	if ((void *)(tcp + 1) > end) {
		/* A first fragment holds at least 8 bytes of TCP header: the
		 * ports but maybe not the flags. Count it as a connection
		 * attempt, so that splitting a SYN does not dodge the limit. */
		if (!first_fragment)
			return PARSE_MALFORMED;
		p->conn_start = 1;
		return PARSE_LIMIT;
	}
	p->conn_start = (tcp->flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
	return PARSE_LIMIT;
}

static __always_inline int parse_ipv4(void *cur, void *end, struct packet *p)
{
	struct iphdr *ip = cur;

	if ((void *)(ip + 1) > end)
		return PARSE_MALFORMED;
	if ((ip->ver_ihl >> 4) != 4)
		return PARSE_MALFORMED;

	__u32 ihl = (ip->ver_ihl & 0x0F) * 4;
	if (ihl < sizeof(*ip))
		return PARSE_MALFORMED;

	__u16 frag = bpf_ntohs(ip->frag_off);
	if (frag & IP_OFFMASK)
		return PARSE_FRAGMENT;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return PARSE_OTHER;

	__u32 *a = (__u32 *)p->src.addr;
	a[0] = 0;
	a[1] = 0;
	a[2] = bpf_htonl(0x0000FFFF);
	a[3] = ip->saddr;
	p->family = 4;

	void *l4 = cur + ihl;
	if (l4 > end)
		return PARSE_MALFORMED;
	return parse_l4(l4, end, ip->protocol, frag & IP_MF, p);
}

static __always_inline int parse_ipv6(void *cur, void *end, struct packet *p)
{
	struct ipv6hdr *ip6 = cur;

	if ((void *)(ip6 + 1) > end)
		return PARSE_MALFORMED;
	if ((bpf_ntohl(ip6->ver_tc_flow) >> 28) != 6)
		return PARSE_MALFORMED;

	__u32 *a = (__u32 *)p->src.addr;
	a[0] = ip6->saddr[0];
	a[1] = ip6->saddr[1];
	a[2] = ip6->saddr[2];
	a[3] = ip6->saddr[3];
	p->family = 6;

	__u8 nh = ip6->nexthdr;
	__u32 off = sizeof(*ip6);
	int first_fragment = 0;

#pragma unroll
	for (int i = 0; i < MAX_IPV6_EXT; i++) {
		if (nh == IPPROTO_TCP || nh == IPPROTO_UDP)
			break;

		void *h = cur + off;
		/* Every supported extension header is at least 8 bytes. */
		if (h + 8 > end)
			return PARSE_MALFORMED;

		struct ipv6_opt_hdr *opt = h;
		struct frag_hdr *fh = h;

		switch (nh) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			nh = opt->nexthdr;
			off += ((__u32)opt->hdrlen + 1) * 8;
			break;
		case IPPROTO_AH:
			nh = opt->nexthdr;
			off += ((__u32)opt->hdrlen + 2) * 4;
			break;
		case IPPROTO_FRAGMENT:
			if (bpf_ntohs(fh->frag_off) & IP6_OFFMASK)
				return PARSE_FRAGMENT;
			/* An atomic fragment (no M flag) is a whole datagram. */
			first_fragment = bpf_ntohs(fh->frag_off) & IP6_MF;
			nh = fh->nexthdr;
			off += sizeof(*fh);
			break;
		default:
			/* ESP, No Next Header, Mobility, HIP, Shim6, ICMPv6, ... */
			return PARSE_OTHER;
		}
		if (off > MAX_IPV6_EXT_BYTES)
			return PARSE_OTHER;
	}
	if (nh != IPPROTO_TCP && nh != IPPROTO_UDP)
		return PARSE_OTHER; /* more extension headers than we walk */

	void *l4 = cur + off;
	if (l4 > end)
		return PARSE_MALFORMED;
	return parse_l4(l4, end, nh, first_fragment, p);
}

static __always_inline int parse(void *data, void *end, struct packet *p)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return PARSE_MALFORMED;

	void *cur = eth + 1;
	__be16 proto = eth->h_proto;

	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vh = cur;

		if ((void *)(vh + 1) > end)
			return PARSE_MALFORMED;
		proto = vh->encap_proto;
		cur = vh + 1;
	}

	/* A second VLAN tag (QinQ) lands here as "other". */
	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(cur, end, p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(cur, end, p);
	return PARSE_OTHER;
}

/* take_token reports whether src may send now, and charges it a token if so.
 * The bucket is GCRA: tat is the time at which the bucket would be full
 * again; a packet conforms when tat - now <= burst_ns, and moves tat on by
 * ns_per_token. The compare-and-swap keeps concurrent CPUs from spending the
 * same token; losing the race repeatedly means the source is sending on
 * several CPUs at once, and its packet counts as over the rate. */
static __always_inline int take_token(struct stoa_addr *src, const struct stoa_config *cfg, __u64 now)
{
	struct stoa_source *s = bpf_map_lookup_elem(&sources, src);

	if (!s) {
		struct stoa_source fresh = {};

		bpf_map_update_elem(&sources, src, &fresh, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&sources, src);
		if (!s)
			return 1; /* the LRU could not make room: fail open */
	}

	__u64 step = cfg->ns_per_token;
	__u64 tolerance = cfg->burst_ns;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u64 old = READ_ONCE(s->tat);
		__u64 base = old > now ? old : now;

		if (base - now > tolerance)
			break;
		if (__sync_val_compare_and_swap(&s->tat, old, base + step) == old) {
			__sync_fetch_and_add(&s->passed, 1);
			return 1;
		}
	}
	__sync_fetch_and_add(&s->dropped, 1);
	return 0;
}

SEC("xdp")
int stoa_xdp_limit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;

	struct stoa_counters *c = bpf_map_lookup_elem(&counters, &zero);
	if (!c)
		return XDP_PASS;

	struct packet p = {};
	switch (parse(data, end, &p)) {
	case PARSE_LIMIT:
		break;
	case PARSE_FRAGMENT:
		c->fragment++;
		return XDP_PASS;
	case PARSE_MALFORMED:
		c->malformed++;
		return XDP_PASS;
	default:
		c->other++;
		return XDP_PASS;
	}

	struct stoa_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct stoa_ports *pm = bpf_map_lookup_elem(&ports, &zero);
	if (!cfg || !pm || !(pm->bits[p.dport >> 6] & (1ULL << (p.dport & 63)))) {
		c->other++;
		return XDP_PASS;
	}

	__u64 now = cfg->now_ns ? cfg->now_ns : bpf_ktime_get_ns();

	struct stoa_lpm_key key = { .family = p.family };
	__u32 *ka = (__u32 *)key.addr, *sa = (__u32 *)p.src.addr;
	if (p.family == 4) {
		key.prefixlen = 32 + 32;
		ka[0] = sa[3];
	} else {
		key.prefixlen = 32 + 128;
		ka[0] = sa[0];
		ka[1] = sa[1];
		ka[2] = sa[2];
		ka[3] = sa[3];
	}

	/* Empty tries are not looked up: each lookup touches cache lines that
	 * a flood would otherwise not need. */
	if ((cfg->flags & STOA_F_HAS_DENY) && bpf_map_lookup_elem(&deny, &key)) {
		c->dropped_deny++;
		return XDP_DROP;
	}

	if (cfg->flags & STOA_F_HAS_BLOCKS) {
		__u64 *until = bpf_map_lookup_elem(&blocks, &key);
		if (until && *until > now) {
			c->dropped_block++;
			return XDP_DROP;
		}
	}

	if (cfg->ns_per_token == 0 || ((cfg->flags & STOA_F_COUNT_CONNS) && !p.conn_start)) {
		c->passed++;
		return XDP_PASS;
	}

	if (!take_token(&p.src, cfg, now)) {
		c->dropped_rate++;
		return XDP_DROP;
	}
	c->passed++;
	return XDP_PASS;
}
