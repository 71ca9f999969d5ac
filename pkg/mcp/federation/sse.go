package federation

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// errEventTooLarge is returned for an event larger than the reader allows.
var errEventTooLarge = errors.New("upstream event too large")

// sseReader reads the data of Server-Sent Events (the WHATWG event-stream
// format: "data:" lines joined by "\n", dispatched on a blank line; comments,
// "event:", "id:" and "retry:" are ignored since MCP carries everything in
// data).
type sseReader struct {
	br   *bufio.Reader
	max  int
	data []byte
	line []byte
}

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{br: bufio.NewReaderSize(r, 16<<10), max: max}
}

// next returns the data of the next event; the slice is valid until the
// following call.
func (r *sseReader) next() ([]byte, error) {
	r.data = r.data[:0]
	has := false
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF && has {
				// A stream that ends without the final blank line still
				// delivered its last event.
				return r.data, nil
			}
			return nil, err
		}
		if len(line) == 0 {
			if has {
				return r.data, nil
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		if string(field) != "data" {
			continue
		}
		if has {
			r.data = append(r.data, '\n')
		}
		r.data = append(r.data, value...)
		has = true
		if len(r.data) > r.max {
			return nil, errEventTooLarge
		}
	}
}

// readLine returns one line without its terminator ("\n" or "\r\n").
func (r *sseReader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		frag, err := r.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			r.line = append(r.line, frag...)
			if len(r.line) > r.max {
				return nil, errEventTooLarge
			}
			continue
		}
		if err != nil && (err != io.EOF || len(frag) == 0 && len(r.line) == 0) {
			return nil, err
		}
		var line []byte
		if len(r.line) > 0 {
			r.line = append(r.line, frag...)
			line = r.line
		} else {
			line = frag
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if err == io.EOF && len(line) == 0 {
			return nil, io.EOF
		}
		return line, nil
	}
}
