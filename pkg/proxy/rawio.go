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

	// The operations in progress, for the callbacks below (bound once: a
	// closure per call would allocate). A Read and a Write may run at
	// the same time (a hijacked stream's reader and writer): each has its
	// own.
	rd, wr, ah      sysOp // Read; Write; the write ahead of a Read
	readFn, writeFn func(uintptr) bool
	writeReadFn     func(uintptr) bool
	ahead           []byte // written by the next Read before it waits (see writeAhead)
}

// sysOp is one read or write: its buffer, the bytes done, the error.
type sysOp struct {
	b     []byte
	n     int
	errno syscall.Errno
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
		s.ah, fn = sysOp{b: s.ahead}, s.writeReadFn
		s.ahead = nil
	}
	s.rd = sysOp{b: p}
	err := s.rc.Read(fn)
	if s.ah.b != nil {
		// The write did not finish: a full socket buffer (write the rest
		// waiting for room, then read), a failure or a passed deadline.
		ah := s.ah
		s.ah, s.rd = sysOp{}, sysOp{}
		if err == nil && ah.errno == 0 {
			if _, err := s.Write(ah.b[ah.n:]); err != nil {
				return 0, err
			}
			return s.Read(p)
		}
		if err == nil {
			err = os.NewSyscallError("write", ah.errno)
		}
		return 0, s.opError("write", err)
	}
	rd := s.rd
	s.rd = sysOp{}
	switch {
	case err != nil:
		return 0, s.opError("read", err)
	case rd.errno != 0:
		return 0, s.opError("read", os.NewSyscallError("read", rd.errno))
	case rd.n == 0:
		return 0, io.EOF
	}
	return rd.n, nil
}

// read is one read(2): false when nothing is there yet (wait and call
// again).
func (s *sysConn) read(fd uintptr) bool {
	for {
		n, e := sysRead(fd, s.rd.b)
		switch e {
		case 0:
			s.rd.n = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		s.rd.errno = e
		return true
	}
}

// writeRead is read's callback after writeAhead: the first call writes,
// and reports nothing to read yet when the write is done.
func (s *sysConn) writeRead(fd uintptr) bool {
	if s.ah.b != nil {
		if !writeOp(fd, &s.ah) || s.ah.errno != 0 {
			return true // see Read
		}
		s.ah = sysOp{}
		return false
	}
	return s.read(fd)
}

func (s *sysConn) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	s.wr = sysOp{b: b}
	err := s.rc.Write(s.writeFn)
	wr := s.wr
	s.wr = sysOp{}
	switch {
	case err != nil:
		return wr.n, s.opError("write", err)
	case wr.errno != 0:
		return wr.n, s.opError("write", os.NewSyscallError("write", wr.errno))
	}
	return wr.n, nil
}

func (s *sysConn) write(fd uintptr) bool { return writeOp(fd, &s.wr) }

// writeOp writes o.b from o.n on: false when the socket's buffer is full
// (wait and call again).
func writeOp(fd uintptr, o *sysOp) bool {
	for o.n < len(o.b) {
		n, e := sysWrite(fd, o.b[o.n:])
		switch e {
		case 0:
			o.n += n
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		o.errno = e
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
