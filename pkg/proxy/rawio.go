package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// sysConn reads and writes a TCP connection with raw system calls.
//
// Go's own Read and Write on a socket tell the scheduler they are entering
// a system call that may block. The socket is non-blocking, so it never
// does, but the scheduler cannot know: a call that takes longer than its
// monitor's tick (20 µs; on a loaded paravirtualised guest a loopback
// write that runs the receiver's TCP path often does) has its processor
// handed to another thread, which must be woken, and the monitor keeps
// polling at its shortest interval while that happens. Per proxied
// request that was a third of the proxy's context switches
// (docs/performance.md, "Kernel side"). Here the same read(2) and
// write(2) run without that bookkeeping; waiting for readiness, deadlines
// and Close work as before, through the connection's poller
// (syscall.RawConn).
type sysConn struct {
	net.Conn
	rc syscall.RawConn

	// The operation in progress, for the callbacks below (bound once: a
	// closure per call would allocate).
	p                            []byte // read into
	w                            []byte // to write
	n                            int
	errno                        syscall.Errno
	readFn, writeFn, writeReadFn func(uintptr) bool

	// ahead is written by the next Read before it waits (see writeAhead).
	ahead []byte
}

// rawIO turns raw reads and writes on (tests compare both ways).
var rawIO = os.Getenv("STOA_RAWIO") != "0"

// newSysConn wraps a plain TCP connection; anything else (TLS, a
// connection in memory) is returned as it is.
func newSysConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok || !rawIO {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	s := &sysConn{Conn: c, rc: rc}
	s.readFn, s.writeFn, s.writeReadFn = s.read, s.write, s.writeRead
	return s
}

// writeAhead has the next Read write b first, then wait for the answer
// without trying to read before it can have come.
//
// A read right after a request is written finds nothing (the peer has
// yet to run), so Go's Read makes one read(2) that fails with EAGAIN
// before it parks on the poller. The poller forgets readiness seen before
// a read starts; written from within the read, after that point, the
// request's answer cannot arrive before the poller listens for it, so the
// wait needs no first attempt. Only for a connection whose peer sends
// nothing unasked: anything it sent while the connection was idle (a
// close, most commonly) would be waited for in vain, so callers use it
// only on a connection idle for less than writeAheadIdle (see
// upConn.send), and a peer that closed outright resets the connection on
// the write, which the poller does report.
func (s *sysConn) writeAhead(b []byte) { s.ahead = b }

func (s *sysConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	fn := s.readFn
	if s.ahead != nil {
		s.w, fn = s.ahead, s.writeReadFn
		s.ahead = nil
	}
	s.p, s.n, s.errno = p, 0, 0
	err := s.rc.Read(fn)
	if s.w != nil {
		// The write did not finish: a full socket buffer (write the rest
		// waiting for room, then read), a failure or a passed deadline.
		w, n := s.w, s.n
		s.w, s.p = nil, nil
		if err == nil && s.errno == 0 {
			if _, err := s.Write(w[n:]); err != nil {
				return 0, err
			}
			return s.Read(p)
		}
		if err == nil {
			err = os.NewSyscallError("write", s.errno)
		}
		return 0, s.opError("write", err)
	}
	s.p = nil
	switch {
	case err != nil:
		return 0, s.opError("read", err)
	case s.errno != 0:
		return 0, s.opError("read", os.NewSyscallError("read", s.errno))
	case s.n == 0:
		return 0, io.EOF
	}
	return s.n, nil
}

// read is one read(2): false when nothing is there yet (wait and call
// again).
func (s *sysConn) read(fd uintptr) bool {
	for {
		n, e := sysRead(fd, s.p)
		switch e {
		case 0:
			s.n = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		s.errno = e
		return true
	}
}

// writeRead is read's callback after writeAhead: the first call writes,
// and reports nothing to read yet when the write is done.
func (s *sysConn) writeRead(fd uintptr) bool {
	if s.w != nil {
		if !s.write(fd) || s.errno != 0 {
			return true // see Read
		}
		s.w, s.n = nil, 0
		return false
	}
	return s.read(fd)
}

func (s *sysConn) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	s.w, s.n, s.errno = b, 0, 0
	err := s.rc.Write(s.writeFn)
	s.w = nil
	switch {
	case err != nil:
		return s.n, s.opError("write", err)
	case s.errno != 0:
		return s.n, s.opError("write", os.NewSyscallError("write", s.errno))
	}
	return s.n, nil
}

// write writes s.w from s.n on: false when the socket's buffer is full
// (wait and call again).
func (s *sysConn) write(fd uintptr) bool {
	for s.n < len(s.w) {
		n, e := sysWrite(fd, s.w[s.n:])
		switch e {
		case 0:
			s.n += n
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		s.errno = e
		return true
	}
	return true
}

// opError makes err look as the net package's own Read and Write report
// it (classify and ioError read timeouts and resets from it).
func (s *sysConn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err // "raw-read" or "raw-write" around the poller's error
	}
	return &net.OpError{Op: op, Net: "tcp", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
}
