package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// wireRun feeds stream to a fresh wireCheck in pieces of the given sizes
// (cycled; none, or a size of 0, feeds the rest at once) and returns the
// fault, how many bytes it delivered, where the piece with the fault
// began, and the offsets at which requests ended (complete only when fed
// a byte at a time).
func wireRun(stream []byte, sizes []int) (fault wireFault, delivered, faultPiece int, ends []int) {
	var w wireCheck
	off := 0
	for i := 0; off < len(stream) && w.fault == faultNone; i++ {
		faultPiece = off
		n := len(stream) - off
		if len(sizes) > 0 && sizes[i%len(sizes)] > 0 {
			n = min(n, sizes[i%len(sizes)])
		}
		before := w.state
		delivered += w.feed(stream[off : off+n])
		off += n
		if w.fault == faultNone && before != wsIdle && w.state == wsIdle {
			ends = append(ends, off)
		}
	}
	return w.fault, delivered, faultPiece, ends
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzWireFraming checks the incremental framing check three ways: the
// verdict does not depend on how the bytes are split into reads; the
// bytes delivered never include a refused request beyond its first byte;
// and wherever the check and fasthttp both accept the requests of a
// stream, they agree on where each one ends (no desync between the check
// and the parser it guards).
func FuzzWireFraming(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\n",
		"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n\n\n\nGET / HTTP/1.1\nHost: a\n\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked \r\n\r\n00A\r\n0123456789\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\x00\r\nhello\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: a\r\ncontent-length:  007 \r\n\r\nhelloabGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
	} {
		f.Add([]byte(s), []byte{0})
		f.Add([]byte(s), []byte{1})
		f.Add([]byte(s), []byte{3, 1, 7})
	}
	for _, s := range requestShapes {
		f.Add([]byte(s), []byte{5, 2})
	}
	f.Fuzz(func(t *testing.T, stream, split []byte) {
		if len(stream) > 4096 || len(split) > 16 {
			return
		}
		sizes := make([]int, len(split))
		for i, b := range split {
			sizes[i] = int(b % 32)
		}
		whole, _, _, _ := wireRun(stream, nil)
		bytewise, _, _, ends := wireRun(stream, []int{1})
		pieces, delivered, faultPiece, _ := wireRun(stream, sizes)
		if whole != bytewise || whole != pieces {
			t.Fatalf("verdict depends on the reads: whole %v, byte by byte %v, in pieces %v %v", whole, bytewise, sizes, pieces)
		}
		// A refused request is withheld from the read that finds the
		// fault, but its first byte (earlier reads are gone).
		if whole != faultNone {
			last := 0
			if len(ends) > 0 {
				last = ends[len(ends)-1]
			}
			if delivered > max(last+1, faultPiece) {
				t.Fatalf("%d bytes delivered, the last good request ends at %d, the faulty read began at %d", delivered, last, faultPiece)
			}
		}
		// fasthttp frames the same stream: where both accept, the ends
		// agree.
		if bytes.Contains(bytes.ToLower(stream), []byte("expect")) {
			return // fasthttp's Request.Read stops before an expected body
		}
		cr := &countingReader{r: bytes.NewReader(stream)}
		br := bufio.NewReader(cr)
		for i, end := range ends {
			var req fasthttp.Request
			if err := req.Header.Read(br); err != nil {
				return // stricter than the check here (names, values, target)
			}
			// As the server reads it (no multipart pre-parse).
			if err := req.ContinueReadBody(br, 0, false); err != nil {
				return
			}
			if consumed := cr.n - br.Buffered(); consumed != end {
				t.Fatalf("request %d: the check ends it at %d, fasthttp at %d\n%q", i, end, consumed, stream)
			}
		}
	})
}

// hostRef is validHost's documented grammar, written as a regular
// expression plus the numeric checks.
var hostRef = regexp.MustCompile(`^(?:([A-Za-z0-9._~-]+)|\[([0-9A-Fa-f:.]+)\])(?::([0-9]{1,5}))?$`)

// FuzzHost checks validHost against a reference and checkTarget's
// promises: an accepted Host never yields URI userinfo (fasthttp's path to
// an upstream Basic credential), and an absolute target passes only when
// it names that Host.
func FuzzHost(f *testing.F) {
	for _, s := range []string{"gw", "gw:8080", "admin:pw@x", "@x", "[::1]:80", "[fe80::1%25eth0]", "x:99999", "x,y",
		"[1.2.3.4]", "GW.example.", "x:", ":80", "a_b~c", "%61", "[::ffff:1.2.3.4]", "x:065535", "x:65536"} {
		f.Add(s, "http")
	}
	f.Add("gw", "ftp")
	f.Add("gw", "HTTPS")
	f.Fuzz(func(t *testing.T, host, scheme string) {
		want := false
		if m := hostRef.FindStringSubmatch(host); m != nil {
			want = true
			if m[2] != "" {
				a, err := netip.ParseAddr(m[2])
				want = err == nil && a.Is6() && a.Zone() == ""
			}
			if m[3] != "" {
				p, _ := strconv.Atoi(m[3])
				want = want && p <= 65535
			}
		}
		got := validHost([]byte(host))
		if got != want {
			t.Fatalf("validHost(%q) = %v, reference %v", host, got, want)
		}
		if got {
			var u fasthttp.URI
			u.Parse([]byte(host), []byte("/x"))
			if len(u.Username()) > 0 || len(u.Password()) > 0 {
				t.Fatalf("accepted Host %q gives URI userinfo", host)
			}
		}
		if strings.ContainsAny(scheme, ":/?#") || strings.ContainsAny(host, "/?#") {
			return
		}
		target := scheme + "://" + host + "/x"
		msg := checkTarget([]byte(target), []byte(host))
		okScheme := strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")
		if (msg == "") != (okScheme && got) {
			t.Fatalf("checkTarget(%q, Host %q) = %q (validHost %v)", target, host, msg, got)
		}
		if msg == "" {
			var u fasthttp.URI
			if err := u.Parse([]byte(host), []byte(target)); err == nil && (len(u.Username()) > 0 || len(u.Password()) > 0) {
				t.Fatalf("accepted target %q gives URI userinfo", target)
			}
		}
		if other := checkTarget([]byte(scheme+"://other.invalid/x"), []byte(host)); other == "" && !strings.EqualFold(host, "other.invalid") {
			t.Fatalf("target naming another host than %q accepted", host)
		}
	})
}
