/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * stoa_net.h declares the on-wire headers the XDP limiter parses. Only the
 * fields it reads are named; sizes match the wire formats exactly.
 */
#ifndef STOA_NET_H
#define STOA_NET_H

#include "stoa_bpf.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

#define IPPROTO_HOPOPTS 0
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_AH 51
#define IPPROTO_DSTOPTS 60

#define IP_MF 0x2000
#define IP_OFFMASK 0x1FFF
#define IP6_OFFMASK 0xFFF8 /* in the fragment header's host-order offset field */
#define IP6_MF 0x0001

#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

struct ethhdr {
	__u8 h_dest[6];
	__u8 h_source[6];
	__be16 h_proto;
};

/* 802.1Q / 802.1ad tag that follows the MAC addresses. */
struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

struct iphdr {
	__u8 ver_ihl; /* version (high nibble), header length in 32-bit words (low) */
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off; /* flags (3 bits) and fragment offset in 8-byte units */
	__u8 ttl;
	__u8 protocol;
	__be16 check;
	__be32 saddr;
	__be32 daddr;
};

struct ipv6hdr {
	__be32 ver_tc_flow; /* version (top 4 bits), traffic class, flow label */
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__be32 saddr[4];
	__be32 daddr[4];
};

/* Hop-by-hop, routing, destination options and AH share this prefix. */
struct ipv6_opt_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset in 8-byte units (high 13 bits), flags (low 3) */
	__be32 identification;
};

struct udphdr {
	__be16 source;
	__be16 dest;
	__be16 len;
	__be16 check;
};

struct tcphdr {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	__u8 doff_res; /* data offset (high nibble) */
	__u8 flags;    /* CWR ECE URG ACK PSH RST SYN FIN */
	__be16 window;
	__be16 check;
	__be16 urg_ptr;
};

#endif /* STOA_NET_H */
