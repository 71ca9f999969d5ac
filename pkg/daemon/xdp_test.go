package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// TestXDPBlocksSurviveDaemonRestart: an operator's block made through the
// LocalAPI is in force again, with its expiry and reason, after stoad
// restarts on the same state — the XDP runtime is given the daemon's
// store (pkg/xdp/xdprt tests the restore itself); a lifted one is not.
func TestXDPBlocksSurviveDaemonRestart(t *testing.T) {
	ld := startDaemon(t, nil)
	ctx := context.Background()
	kept, err := ld.c.XDPBlock(ctx, &api.XDPBlockRequest{CIDR: "198.51.100.7", For: "1h", Reason: "stuffing"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ld.c.XDPBlock(ctx, &api.XDPBlockRequest{CIDR: "2001:db8::/48", For: "1h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ld.c.XDPUnblock(ctx, "2001:db8::/48"); err != nil {
		t.Fatal(err)
	}
	ld.restart()
	list, err := ld.c.XDPBlocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("blocks after the restart: %+v", list.Items)
	}
	b := list.Items[0]
	if b.Source != "198.51.100.7/32" || b.Reason != "stuffing" || !b.Until.Equal(kept.Until) || !b.Until.After(time.Now()) {
		t.Fatalf("block after the restart: %+v, want %+v", b, kept)
	}
}
