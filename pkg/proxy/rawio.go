package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
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

	// reading and writing claim rd and wr for one Read and one Write. A
	// Read and a Write may run at the same time (a hijacked stream's
	// reader and writer) and each has its own state; two Reads (or two
	// Writes) at once, which net.Conn allows, would share it, so the
	// second goes through net's own Read (Write), which waits its turn on
	// the descriptor's lock.
	reading, writing atomic.Bool

	// The operations in progress, for the callbacks below (bound once: a
	// closure per call would allocate).
	rd, wr, ah      sysOp // Read; Write; the write ahead of a Read
	readFn, writeFn func(uintptr) bool
	writeReadFn     func(uintptr) bool
	ahead           []byte // written by the next Read before it waits (see writeAhead)
	// drained: the last read(2) returned less than it asked for, so the
	// socket's receive queue was empty then (see upConn.send).
	drained bool
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
// before it parks on the poller. The poller's readiness is reset when a
// read begins (prepareRead), before its first attempt; readiness that
// arrives after that point is kept for the wait (netpollblock finds it and
// does not park). Written from within the read, after that point, the
// request's answer cannot arrive before the poller listens for it, so the
// wait needs no first attempt.
//
// The reset also discards readiness that came BEFORE the read began: bytes
// or a close the peer sent unasked while the connection was idle, which
// the poller has already reported (epoll is edge-triggered: it does not
// report them again). Such a read waits for the next event instead — the
// answer, a reset — or its deadline. Callers must therefore know the
// receive queue is empty (upConn.send: the last read drained it, a moment
// ago) and must have set a read deadline, which bounds the wait.
func (s *sysConn) writeAhead(b []byte) { s.ahead = b }

func (s *sysConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !s.reading.CompareAndSwap(false, true) {
		return s.Conn.Read(p) // another Read has rd (see reading)
	}
	n, err := s.readOnce(p)
	s.reading.Store(false)
	return n, err
}

// readOnce is Read's work, with rd claimed.
func (s *sysConn) readOnce(p []byte) (int, error) {
	fn := s.readFn
	if s.ahead != nil {
		s.ah, fn = sysOp{b: s.ahead}, s.writeReadFn
		s.ahead = nil
	}
	s.rd = sysOp{b: p}
	s.drained = false
	err := s.rc.Read(fn)
	if s.ah.b != nil {
		// The write did not finish: a full socket buffer (write the rest
		// waiting for room, then read as any read does, trying first),
		// a failure or a passed deadline.
		ah := s.ah
		s.ah, s.rd = sysOp{}, sysOp{}
		if err == nil && ah.errno == 0 {
			if _, err := s.Write(ah.b[ah.n:]); err != nil {
				return 0, err
			}
			return s.readOnce(p)
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
	s.drained = rd.n < len(p)
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
	if !s.writing.CompareAndSwap(false, true) {
		return s.Conn.Write(b) // another Write has wr (see reading)
	}
	n, err := s.writeOnce(b)
	s.writing.Store(false)
	return n, err
}

// writeOnce is Write's work, with wr claimed.
func (s *sysConn) writeOnce(b []byte) (int, error) {
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
