package localapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// apiError is an error with a LocalAPI code and a hint.
func apiError(code, msg, hint string) *api.Error {
	return &api.Error{Code: code, Message: msg, Hint: hint}
}

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// WriteError writes err as the JSON error envelope: an *api.Error as it
// is, anything else with the code its kind calls for.
func WriteError(w http.ResponseWriter, err error) {
	var (
		ae *api.Error
		ce *challengeError
	)
	if errors.As(err, &ce) {
		w.Header().Set("WWW-Authenticate", ce.challenge)
		ae = ce.e
	} else if fe, ok := forbidden(err); ok {
		ae = fe
	} else if !errors.As(err, &ae) {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			ae = apiError(api.CodeBadRequest, "request body too large", "")
		case errors.Is(err, store.ErrNotFound):
			ae = apiError(api.CodeNotFound, err.Error(), "")
		case errors.Is(err, store.ErrUnavailable):
			// A database that cannot be reached: nothing was changed
			// (or, if the connection broke during a commit, all of it
			// was or none), and the store reconnects by itself.
			ae = apiError(api.CodeUnavailable, "state store unavailable: "+err.Error(),
				"nothing was half-written; retry when the database is back (stoa history shows what was committed)")
		default:
			ae = apiError(api.CodeInternal, err.Error(), "")
		}
	}
	status := http.StatusInternalServerError
	switch ae.Code {
	case api.CodeInvalid:
		status = http.StatusUnprocessableEntity
	case api.CodeNotFound:
		status = http.StatusNotFound
	case api.CodeConflict:
		status = http.StatusConflict
	case api.CodeUnauthorized:
		status = http.StatusUnauthorized
	case api.CodeForbidden:
		status = http.StatusForbidden
	case api.CodeBadRequest:
		status = http.StatusBadRequest
	case api.CodeUnavailable:
		status = http.StatusServiceUnavailable
	case api.CodeMethod:
		status = http.StatusMethodNotAllowed
	}
	WriteJSON(w, status, api.ErrorBody{Error: ae})
}

// DecodeBody decodes a bounded JSON request body into v.
func DecodeBody(r *http.Request, w http.ResponseWriter, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	dec := json.NewDecoder(bufio.NewReaderSize(r.Body, 64<<10))
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return apiError(api.CodeBadRequest, "decode request: "+err.Error(), "")
	}
	return nil
}

// decodeApply decodes an apply request as DecodeBody does, with the
// objects (most of the request, and of a large apply's time in stoad)
// decoded on all processors by spec.DecodeObjects. Whatever that leaves
// to encoding/json, errors included, is decoded again exactly as
// DecodeBody decodes it.
func decodeApply(r *http.Request, w http.ResponseWriter) (*api.ApplyRequest, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	body, err := readBody(r.Body, r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, apiError(api.CodeBadRequest, "decode request: "+err.Error(), "")
	}
	// The objects apart from the rest, on all processors; when either
	// part is not what DecodeObjects or CutMember read exactly as
	// encoding/json does, or has an error, the whole body is decoded
	// again below, which gives the result or the error as it always has.
	if objsJSON, rest, ok := spec.CutMember(body, "objects"); ok {
		var req api.ApplyRequest
		if json.Unmarshal(rest, &req) == nil {
			if objs, ok := spec.DecodeObjects(objsJSON); ok {
				req.Objects = objs
				return &req, nil
			}
		}
	}
	var req api.ApplyRequest
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&req); err != nil {
		return nil, apiError(api.CodeBadRequest, "decode request: "+err.Error(), "")
	}
	return &req, nil
}

// readBody reads all of r into one buffer of the announced size.
func readBody(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 || size > maxRequestBody {
		return io.ReadAll(r)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// ndjson writes a stream of JSON lines (application/x-ndjson).
type ndjson struct {
	w   http.ResponseWriter
	enc *json.Encoder
	fl  http.Flusher
}

// startNDJSON answers 200 with an NDJSON stream.
func startNDJSON(w http.ResponseWriter) *ndjson {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &ndjson{w: w, enc: enc, fl: fl}
}

// Write adds v to the stream; Flush sends what was written.
func (s *ndjson) Write(v any) error { return s.enc.Encode(v) }

// Flush sends what was written so far.
func (s *ndjson) Flush() {
	if s.fl != nil {
		s.fl.Flush()
	}
}

// Send writes v and flushes it: one event, delivered now.
func (s *ndjson) Send(v any) error {
	if err := s.enc.Encode(v); err != nil {
		return err
	}
	s.Flush()
	return nil
}

// SendLine sends an encoded line as it is (a newline-terminated JSON
// value, or an empty line to keep an idle stream open; NDJSON readers
// skip empty lines).
func (s *ndjson) SendLine(line []byte) error {
	if _, err := s.w.Write(line); err != nil {
		return err
	}
	s.Flush()
	return nil
}
