#!/usr/bin/env bash
# CI release check: install GoReleaser at a pinned version with `go install`,
# validate .goreleaser.yaml, and build a snapshot of both binaries for this
# platform (no archives, no signing). Run from anywhere:
#
#   bash scripts/release-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
GORELEASER_VERSION=v2.15.1
export PATH="$(go env GOPATH)/bin:$PATH"

if ! goreleaser --version 2>/dev/null | grep -q "${GORELEASER_VERSION#v}"; then
	echo "release-check: installing goreleaser $GORELEASER_VERSION"
	go install "github.com/goreleaser/goreleaser/v2@$GORELEASER_VERSION"
fi

start=$SECONDS
goreleaser check
# A snapshot build of stoa and stoad for this machine's GOOS/GOARCH; the
# output goes to dist/ (git-ignored). --single-target skips the other
# platforms, so this stays well under a minute.
goreleaser build --snapshot --clean --single-target
for bin in stoa stoad; do
	found=$(find dist -type f -name "$bin" -perm -u+x | head -n1)
	if [ -z "$found" ]; then
		echo "release-check: no $bin in dist/" >&2
		exit 1
	fi
	# Both binaries answer --version with one line and without a daemon.
	"$found" --version
done
rm -rf man # the before-hook's man pages
echo "release-check: ok in $((SECONDS - start))s (after install)"
