//go:build race

package proxy

import "syscall"

// Under the race detector the syscall package's Read and Write: they tell
// the detector that bytes written to a socket and read from it order the
// two sides (a test reading an answer after the proxy recorded something),
// which raw system calls would hide.
func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}

func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}
