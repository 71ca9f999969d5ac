package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// transport carries LocalAPI calls: the unix socket (*Client) or HTTPS to
// a control plane (*Remote). Each turns its own failures into the typed
// errors of this package; an answer with an error status becomes the
// error envelope's *api.Error (errorFromAnswer) or a transport's own type.
type transport interface {
	// do sends a JSON request (in may be nil) and decodes the JSON answer
	// into out (may be nil).
	do(ctx context.Context, method, path string, in, out any) error
	// stream sends a GET whose answer (NDJSON) is read as it arrives,
	// for as long as ctx lasts; the caller closes it.
	stream(ctx context.Context, path string) (io.ReadCloser, error)
}

// routes are the LocalAPI's calls, the same over every transport, so a
// remote context sends exactly what the socket does.
type routes struct{ tr transport }

// maxErrorBody bounds how much of a failed answer is read.
const maxErrorBody = 64 << 20

// statusCodes maps HTTP statuses to error codes for answers that carry no
// JSON error envelope (a proxy in between, an older stoad).
var statusCodes = map[int]string{
	http.StatusBadRequest:          api.CodeBadRequest,
	http.StatusUnauthorized:        api.CodeUnauthorized,
	http.StatusForbidden:           api.CodeForbidden,
	http.StatusNotFound:            api.CodeNotFound,
	http.StatusMethodNotAllowed:    api.CodeMethod,
	http.StatusConflict:            api.CodeConflict,
	http.StatusUnprocessableEntity: api.CodeInvalid,
	http.StatusBadGateway:          api.CodeUnavailable,
	http.StatusServiceUnavailable:  api.CodeUnavailable,
	http.StatusGatewayTimeout:      api.CodeUnavailable,
}

// errorFromAnswer decodes the error envelope of a failed answer, or, when
// the body is not one (a load balancer's page), makes an *api.Error from
// the status; who names the server in its message.
func errorFromAnswer(who string, status int, statusText string, body []byte) error {
	var eb api.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error == nil || eb.Error.Code == "" {
		code, ok := statusCodes[status]
		if !ok {
			code = api.CodeInternal
		}
		text := bytes.TrimSpace(body)
		if len(text) > 512 {
			text = append(text[:512:512], "…"...)
		}
		return &api.Error{Code: code, Message: fmt.Sprintf("%s answered %s: %s", who, statusText, text)}
	}
	return eb.Error
}

// Unusable returns an API whose every call fails with err: for a client
// that could not be set up (an unknown context, a broken configuration
// file), so that commands report the problem when they first call, and
// commands that never call (validate) are not affected.
func Unusable(endpoint string, err error) API {
	u := &unusable{endpoint: endpoint, err: err}
	u.routes = routes{tr: u}
	return u
}

type unusable struct {
	routes
	endpoint string
	err      error
}

func (u *unusable) Endpoint() string { return u.endpoint }

func (u *unusable) do(context.Context, string, string, any, any) error { return u.err }

func (u *unusable) stream(context.Context, string) (io.ReadCloser, error) { return nil, u.err }
