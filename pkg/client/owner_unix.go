//go:build unix

package client

import (
	"fmt"
	"io/fs"
	"os/user"
	"strconv"
	"syscall"
)

// fileOwner names the owner and group of a file: "alice (uid 1000)".
func fileOwner(fi fs.FileInfo) (owner, group string) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", ""
	}
	uid, gid := strconv.FormatUint(uint64(st.Uid), 10), strconv.FormatUint(uint64(st.Gid), 10)
	owner, group = "uid "+uid, "gid "+gid
	if u, err := user.LookupId(uid); err == nil {
		owner = fmt.Sprintf("%s (uid %s)", u.Username, uid)
	}
	if g, err := user.LookupGroupId(gid); err == nil {
		group = fmt.Sprintf("%s (gid %s)", g.Name, gid)
	}
	return owner, group
}
