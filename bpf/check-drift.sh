#!/usr/bin/env bash
# check-drift.sh regenerates the XDP objects and Go bindings in a temporary
# copy of their inputs and fails if the result differs from the committed
# files in pkg/xdp. Without the pinned clang (clang-14 14.0.6 and
# llvm-strip-14, Debian bookworm) it prints a notice and exits 0.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
want=14.0.6

if ! command -v clang-14 >/dev/null || ! command -v llvm-strip-14 >/dev/null; then
	echo "check-drift: skipped: clang-14/llvm-strip-14 not installed (apt-get install clang-14 llvm-14)"
	exit 0
fi
if ! clang-14 --version | grep -q "version $want"; then
	echo "check-drift: skipped: clang-14 is $(clang-14 --version | head -1), not $want"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/pkg/xdp"
cp -r "$root/bpf" "$tmp/bpf"
cp "$root/go.mod" "$root/go.sum" "$tmp/"
cp "$root/pkg/xdp/gen.go" "$tmp/pkg/xdp/"
(cd "$tmp/pkg/xdp" && go generate .)

status=0
for f in xdplimiter_bpfel.go xdplimiter_bpfel.o xdplimiter_bpfeb.go xdplimiter_bpfeb.o; do
	if [ ! -f "$root/pkg/xdp/$f" ]; then
		echo "check-drift: pkg/xdp/$f is missing; run: make -C bpf generate"
		status=1
	elif ! cmp -s "$tmp/pkg/xdp/$f" "$root/pkg/xdp/$f"; then
		echo "check-drift: pkg/xdp/$f differs from what bpf/ generates; run: make -C bpf generate"
		status=1
	fi
done
if [ "$status" -eq 0 ]; then
	echo "check-drift: pkg/xdp matches bpf/ (clang-14 $want)"
fi
exit "$status"
