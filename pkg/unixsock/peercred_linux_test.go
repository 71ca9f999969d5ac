//go:build linux

package unixsock

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestPeerCred: the kernel's credentials of the connecting process, and
// Trusted admitting exactly root and this process's user.
func TestPeerCred(t *testing.T) {
	ln, err := Listen(filepath.Join(sockDir(t), "s.sock"), "", "--socket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("unix", ln.Addr().String())
		if err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	uid, gid, pid, err := PeerCred(c)
	if err != nil {
		t.Fatal(err)
	}
	if uid != uint32(os.Geteuid()) || gid != uint32(os.Getegid()) || pid != int32(os.Getpid()) {
		t.Fatalf("PeerCred = uid %d gid %d pid %d; want %d %d %d", uid, gid, pid, os.Geteuid(), os.Getegid(), os.Getpid())
	}
	if !Trusted(uid) || !Trusted(0) || Trusted(^uint32(0)) {
		t.Fatal("Trusted must admit root and our own user only")
	}
	if _, _, _, err := PeerCred(&net.TCPConn{}); err == nil {
		t.Fatal("PeerCred of a TCP connection succeeded")
	}
}
