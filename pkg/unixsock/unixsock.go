// Package unixsock makes the unix sockets stoad serves on (the LocalAPI,
// MCP for local agents) safely, and reads who is on the other end.
package unixsock

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Listener is a listening unix socket that, when closed, removes its
// file only if the path still names the socket it created: a file put
// there since (by another stoad, or anyone who could write to the
// directory) is left alone.
type Listener struct {
	*net.UnixListener
	// GID is the numeric id of the group the socket was opened to, if any.
	GID  string
	path string
	made fs.FileInfo
}

// Close stops listening and removes the socket file if it is still ours.
func (s *Listener) Close() error {
	err := s.UnixListener.Close()
	if fi, lerr := os.Lstat(s.path); lerr == nil && os.SameFile(fi, s.made) {
		os.Remove(s.path)
	}
	return err
}

// Listen creates the socket at path with mode 0600 (0660 and the group
// when group is set). flag names the option that set path, for errors.
//
// Only a stale socket is ever replaced: one that is a socket (lstat, so a
// symbolic link is not followed) and that refuses connections. A live
// socket means another stoad serves there; anything else at the path (a
// regular file, a symbolic link, a directory) is someone's data and is an
// error naming what it is. A directory others may write to is logged as a
// warning: whoever can write there can replace the socket under stoad.
func Listen(path, group, flag string, log *slog.Logger) (*Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory %s: %w", dir, err)
	}
	if risk := socketDirRisk(dir); risk != "" && log != nil {
		log.Warn("socket directory is unsafe: other users can replace the socket", "flag", flag, "path", path, "dir", dir, "why", risk,
			"hint", "put the socket in a directory only stoad's user (or root) can write, e.g. $XDG_RUNTIME_DIR or /run/stoa")
	}
	if err := clearStaleSocket(path, flag); err != nil {
		return nil, err
	}
	mode := os.FileMode(0o600)
	var gid string
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			if g2, err2 := user.LookupGroupId(group); err2 == nil {
				g = g2
			} else {
				return nil, fmt.Errorf("--socket-group %q: %w", group, err)
			}
		}
		gid = g.Gid
		mode = 0o660
	}
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// Removal is ours (Close), checked against the file we made; the
	// listener's own unlink would remove whatever the path names by then.
	ln.SetUnlinkOnClose(false)
	made, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	s := &Listener{UnixListener: ln, GID: gid, path: path, made: made}
	if gid != "" {
		n, _ := strconv.Atoi(gid)
		if err := os.Chown(path, -1, n); err != nil {
			s.Close()
			return nil, fmt.Errorf("chown socket to group %s: %w", group, err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		s.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	return s, nil
}

// clearStaleSocket makes path free for a new socket, or says why it
// cannot.
func clearStaleSocket(path, flag string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check %s %s: %w", flag, path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s %s: the path is %s, not a socket; stoad replaces only a stale socket of its own "+
			"(remove it yourself if it is not needed, or pass another %s)", flag, path, fileKind(path, fi), flag)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s %s: another stoad is serving on %s (stop it, or pass another %s)", flag, path, path, flag)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		// EACCES (someone else's socket), a timeout (a live server
		// with a full backlog), …: not provably stale.
		return fmt.Errorf("%s %s: cannot tell whether the socket there is in use: %w (remove it if nothing serves on it, or pass another %s)",
			flag, path, err, flag)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// fileKind names what fi is, for errors.
func fileKind(path string, fi fs.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeSymlink != 0:
		if to, err := os.Readlink(path); err == nil {
			return "a symbolic link (to " + to + ")"
		}
		return "a symbolic link"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case t&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a socket (" + fi.Mode().Type().String() + ")"
}

// socketDirRisk says why users other than stoad's (and root) could
// replace a socket in dir, or "". A world-writable directory with the
// sticky bit (/tmp) is safe on this count: there only a file's owner may
// remove or rename it, and a file squatting the path is refused at start.
func socketDirRisk(dir string) string {
	fi, err := os.Stat(dir)
	if err != nil {
		return ""
	}
	m := fi.Mode()
	if m&0o002 != 0 && m&fs.ModeSticky == 0 {
		return fmt.Sprintf("%s is writable by every user (mode %04o) and has no sticky bit", dir, m.Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Sprintf("%s is owned by uid %d, not by stoad's user (uid %d) or root", dir, st.Uid, os.Geteuid())
	}
	return ""
}

// Trusted reports whether uid is root or the user this process runs as:
// the peers a socket of mode 0600 admits anyway, and whom stoad trusts on
// its sockets without further credentials.
func Trusted(uid uint32) bool { return uid == 0 || uid == uint32(os.Geteuid()) }
