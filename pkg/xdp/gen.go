package xdp

// The BPF objects and their Go bindings are generated from bpf/xdp_limiter.c
// and committed, so building stoa needs no C toolchain. Regenerate them with
// `make -C bpf generate` (which checks for the pinned clang) after changing
// anything under bpf/; bpf/check-drift.sh verifies the committed files.
//
// The compiler is pinned to Debian bookworm's clang-14 (14.0.6) so that the
// objects are byte-for-byte reproducible. bpfel serves amd64, arm64 and every
// other little-endian architecture; bpfeb serves s390x and friends.
//
//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -cflags "-O2 -mcpu=v3 -Wall -Werror -I../../bpf/include" -target bpfel,bpfeb -tags linux -type stoa_config -type stoa_ports -type stoa_lpm_key -type stoa_addr -type stoa_source -type stoa_counters xdplimiter ../../bpf/xdp_limiter.c
