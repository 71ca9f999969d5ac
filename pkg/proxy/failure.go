package proxy

import "github.com/valyala/fasthttp"

// Exchange is a failed exchange as it crossed the gateway: the request as
// sent upstream and the response the client got, bodies cut to a limit.
type Exchange struct {
	// Query is the request's raw query (no '?'); RequestURI its path and
	// query as sent.
	Query, RequestURI string
	// TLS says whether the client connected with TLS. Host is the
	// request's Host as the exchange left it: the one the client asked for
	// when no upstream was tried, the upstream's once the request was sent
	// there; the listener's address when there is none.
	TLS  bool
	Host string

	RequestHeaders     [][2]string
	RequestBody        []byte // at most the limit given to Exchange
	RequestBodyLen     int    // the whole body's length
	RequestContentType string

	ResponseHeaders     [][2]string
	ResponseBody        []byte
	ResponseBodyLen     int
	ResponseContentType string
}

// reportFailure hands f, bound to its exchange, to OnFailure.
func (p *Proxy) reportFailure(ctx *fasthttp.RequestCtx, f *Failure) {
	f.Method = string(ctx.Request.Header.Method())
	f.ctx = ctx
	p.opts.OnFailure(f)
	f.ctx = nil
}

// Exchange copies the failed exchange's messages, each body cut to
// bodyLimit bytes. It may be called only during OnFailure.
func (f *Failure) Exchange(bodyLimit int) Exchange {
	ctx := f.ctx
	x := Exchange{
		Query:      string(ctx.URI().QueryString()),
		RequestURI: string(ctx.Request.URI().RequestURI()),
		TLS:        ctx.IsTLS(),
		Host:       string(ctx.Request.Header.Host()),
	}
	if x.Host == "" {
		x.Host = ctx.LocalAddr().String()
	}
	for k, v := range ctx.Request.Header.All() {
		x.RequestHeaders = append(x.RequestHeaders, [2]string{string(k), string(v)})
	}
	body := ctx.Request.Body()
	x.RequestBodyLen, x.RequestBody = len(body), clip(body, bodyLimit)
	x.RequestContentType = string(ctx.Request.Header.ContentType())
	for k, v := range ctx.Response.Header.All() {
		x.ResponseHeaders = append(x.ResponseHeaders, [2]string{string(k), string(v)})
	}
	body = ctx.Response.Body()
	x.ResponseBodyLen, x.ResponseBody = len(body), clip(body, bodyLimit)
	x.ResponseContentType = string(ctx.Response.Header.ContentType())
	return x
}

// clip copies at most n bytes of b.
func clip(b []byte, n int) []byte {
	if len(b) > n {
		b = b[:n]
	}
	return append([]byte(nil), b...)
}
