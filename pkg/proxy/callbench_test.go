package proxy

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"testing"
)

// BenchmarkCall: Proxy.Call (an MCP tools/call's upstream exchange) of a
// GET to an upstream that answers every request with the same small JSON
// answer, over one kept-alive connection. Process CPU per call (caller and
// upstream included) is reported as cpu-ns/op.
func BenchmarkCall(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 07 Dec 2026 10:00:00 GMT\r\n" +
		"Content-Length: 45\r\n\r\n{\"sku\":\"abc-123\",\"inStock\":49,\"price\":12.5e0}")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// One request: a head without a body (GET).
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(bytes.TrimRight(line, "\r\n")) == 0 {
							break
						}
					}
					if _, err := c.Write(answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	e := newEnv(b, tool("acme", "svc", "http://"+ln.Addr().String(), ""))
	cr := &CallRequest{Tenant: "acme", Tool: "svc", Method: "GET", Path: []byte("/items/abc-123"),
		Header: [][2][]byte{{[]byte("Accept"), []byte("application/json")}}}
	call := func() {
		resp, err := e.p.Call(context.Background(), cr)
		if err != nil || resp.Status != 200 || len(resp.Body) != 45 {
			b.Fatalf("%v %+v", err, resp)
		}
		resp.Release()
	}
	call()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for range b.N {
		call()
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}
