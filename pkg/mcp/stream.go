package mcp

import (
	"bytes"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
)

// Notification streams. Legacy clients open one with GET (2025-11-25
// "listening for messages from the server"); modern clients POST
// subscriptions/listen and get an SSE response that stays open
// (2026-07-28). Both carry only list_changed notifications here, sent when a
// new catalog changes what the stream's caller sees.
//
// Streams run on hijacked connections: fasthttp's WriteTimeout and
// Shutdown do not apply, so the stream owns its deadlines, detects a closed
// client by reading, and Server.Close ends it.

const streamWriteTimeout = 10 * time.Second

type stream struct {
	caller Caller
	// subID is the raw JSON id of the subscriptions/listen request; nil for
	// a legacy GET stream.
	subID         []byte
	wantTools     bool
	wantResources bool
	events        chan []byte
	done          chan struct{}
	closeOnce     sync.Once
}

func (st *stream) stop() { st.closeOnce.Do(func() { close(st.done) }) }

type streamSet struct {
	mu        sync.Mutex
	all       map[*stream]struct{}
	perTenant map[string]int
	closed    bool
}

func (ss *streamSet) init() {
	ss.all = map[*stream]struct{}{}
	ss.perTenant = map[string]int{}
}

func (ss *streamSet) add(st *stream, maxAll, maxTenant int) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	key := audience(st.caller)
	if ss.closed || len(ss.all) >= maxAll || ss.perTenant[key] >= maxTenant {
		return false
	}
	ss.all[st] = struct{}{}
	ss.perTenant[key]++
	return true
}

func (ss *streamSet) remove(st *stream) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.all[st]; !ok {
		return
	}
	delete(ss.all, st)
	key := audience(st.caller)
	if ss.perTenant[key]--; ss.perTenant[key] <= 0 {
		delete(ss.perTenant, key)
	}
}

// Len returns the number of open streams.
func (ss *streamSet) len() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.all)
}

func (ss *streamSet) closeAll() {
	ss.mu.Lock()
	ss.closed = true
	list := make([]*stream, 0, len(ss.all))
	for st := range ss.all {
		list = append(list, st)
	}
	ss.mu.Unlock()
	for _, st := range list {
		st.stop()
	}
}

// notifyChanged queues list_changed notifications on the streams whose
// caller's view differs between the two catalogs. A full queue already holds
// a pending notification, which is enough: the client re-lists anyway.
func (ss *streamSet) notifyChanged(old, cur *Catalog) {
	// Views of callers with Grants may be built here (once per key): not
	// under the lock, which new streams need.
	ss.mu.Lock()
	list := make([]*stream, 0, len(ss.all))
	for st := range ss.all {
		list = append(list, st)
	}
	ss.mu.Unlock()
	for _, st := range list {
		ov, nv := old.viewFor(st.caller).lists(), cur.viewFor(st.caller).lists()
		if st.wantTools && ov.toolList.digest != nv.toolList.digest {
			st.send(notification("notifications/tools/list_changed", st.subID))
		}
		if st.wantResources && ov.resList.digest != nv.resList.digest {
			st.send(notification("notifications/resources/list_changed", st.subID))
		}
	}
}

func (st *stream) send(frame []byte) {
	select {
	case st.events <- frame:
	default:
	}
}

// notification encodes an SSE event carrying a notification; on a
// subscription stream it names the subscription in _meta (2026-07-28).
func notification(method string, subID []byte) []byte {
	b := []byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"")
	b = append(b, method...)
	b = append(b, '"')
	if subID != nil {
		b = append(b, `,"params":{"_meta":{"io.modelcontextprotocol/subscriptionId":`...)
		b = append(b, subID...)
		b = append(b, "}}"...)
	}
	return append(b, "}\n\n"...)
}

func sseFrame(msg []byte) []byte {
	b := make([]byte, 0, len(msg)+24)
	b = append(b, "event: message\ndata: "...)
	b = append(b, msg...)
	return append(b, "\n\n"...)
}

// serveGet opens a legacy notification stream.
func (s *Server) serveGet(ctx *fasthttp.RequestCtx, rh *reqHeaders) {
	if isModernVersion(rh.version) {
		ctx.Response.Header.Set("Allow", "POST, OPTIONS")
		s.writeHTTPError(ctx, nil, &rpcError{status: fasthttp.StatusMethodNotAllowed, code: rpc.CodeInvalidRequest,
			message: "Method not allowed: protocol version 2026-07-28 has no GET stream; POST subscriptions/listen"})
		return
	}
	caller, ok := s.authenticate(ctx, rh)
	if !ok {
		return
	}
	if accept := ctx.Request.Header.Peek("Accept"); len(accept) > 0 &&
		!bytes.Contains(accept, []byte("text/event-stream")) && !bytes.Contains(accept, []byte("*/*")) {
		s.writeHTTPError(ctx, nil, &rpcError{status: fasthttp.StatusNotAcceptable, code: rpc.CodeInvalidRequest,
			message: "Not Acceptable: the GET stream is text/event-stream"})
		return
	}
	st := &stream{caller: caller, wantTools: true, wantResources: true}
	s.startStream(ctx, st, nil)
}

// listen serves subscriptions/listen (2026-07-28): acknowledge the agreed
// subset of the filter, then keep the response stream open for
// notifications tagged with the subscription id.
func (s *Server) listen(ctx *fasthttp.RequestCtx, caller Caller, rs *reqState) {
	id := rs.req.ID
	var filter struct{ tools, prompts, resources bool }
	if n := rs.par.Notifications; n != nil && n[0] == '{' {
		it := rpc.NewIterator(n)
		for {
			k, v, ok := it.Next()
			if !ok {
				break
			}
			switch string(k) {
			case "toolsListChanged":
				filter.tools = string(v) == "true"
			case "resourcesListChanged":
				filter.resources = string(v) == "true"
			}
		}
	} else {
		s.writeHTTPError(ctx, id, &rpcError{status: fasthttp.StatusOK, code: rpc.CodeInvalidParams,
			message: `Invalid params: subscriptions/listen requires a "notifications" object`})
		return
	}
	st := &stream{caller: caller, subID: append([]byte(nil), id...), wantTools: filter.tools, wantResources: filter.resources}
	ack := []byte(`{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{"notifications":{`)
	ack = appendBoolField(ack, "toolsListChanged", st.wantTools)
	ack = append(ack, ',')
	ack = appendBoolField(ack, "resourcesListChanged", st.wantResources)
	ack = append(ack, `},"_meta":{"io.modelcontextprotocol/subscriptionId":`...)
	ack = append(ack, st.subID...)
	ack = append(ack, "}}}"...)
	s.startStream(ctx, st, sseFrame(ack))
}

// startStream hijacks the connection and runs the stream on it.
func (s *Server) startStream(ctx *fasthttp.RequestCtx, st *stream, first []byte) {
	st.events = make(chan []byte, 4)
	st.done = make(chan struct{})
	if !s.streams.add(st, s.opts.MaxStreams, s.opts.MaxStreamsPerTenant) {
		ctx.Response.Header.Set("Retry-After", "30")
		s.writeHTTPError(ctx, st.subID, &rpcError{status: fasthttp.StatusTooManyRequests, code: rpc.CodeInvalidRequest,
			message: "Too many open notification streams"})
		return
	}
	head := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n" +
		"X-Accel-Buffering: no\r\nConnection: close\r\n")
	ctx.Response.Header.VisitAll(func(k, v []byte) {
		if bytes.HasPrefix(k, []byte("Access-Control-")) || string(k) == "Vary" {
			head = append(head, k...)
			head = append(head, ": "...)
			head = append(head, v...)
			head = append(head, "\r\n"...)
		}
	})
	head = append(head, "\r\n: stream open\n\n"...)
	head = append(head, first...)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) { s.runStream(c, st, head) })
}

func (s *Server) runStream(c net.Conn, st *stream, head []byte) {
	defer s.streams.remove(st)
	defer c.Close() // fasthttp leaves it open with KeepHijackedConns
	write := func(p []byte) bool {
		_ = c.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		_, err := c.Write(p)
		return err == nil
	}
	if !write(head) {
		return
	}
	gone := make(chan struct{})
	go func() {
		// The client sends nothing more on this connection; a read returns
		// when it closes it.
		var buf [64]byte
		for {
			if _, err := c.Read(buf[:]); err != nil {
				close(gone)
				return
			}
		}
	}()
	// fasthttp recycles the hijacked connection's reader when this function
	// returns, so the reading goroutine must be gone first.
	defer func() {
		_ = c.SetReadDeadline(time.Unix(1, 0))
		<-gone
	}()
	tick := time.NewTicker(s.opts.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case frame := <-st.events:
			if !write(frame) {
				return
			}
		case <-tick.C:
			if !write([]byte(":\n\n")) {
				return
			}
		case <-gone:
			return
		case <-st.done:
			if st.subID != nil {
				// A graceful end of a subscription is its response.
				res := []byte(`{"jsonrpc":"2.0","id":`)
				res = append(res, st.subID...)
				res = append(res, `,"result":{"resultType":"complete","_meta":{"io.modelcontextprotocol/subscriptionId":`...)
				res = append(res, st.subID...)
				res = append(res, `,"io.modelcontextprotocol/serverInfo":`...)
				res = append(res, s.serverInfo...)
				res = append(res, "}}}"...)
				write(sseFrame(res))
			}
			return
		}
	}
}
