package rpc

// JSON-RPC 2.0 error codes used by MCP.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
	// CodeResourceNotFound is the legacy (2025-11-25 and earlier) code for an
	// unknown resource URI; 2026-07-28 uses CodeInvalidParams instead.
	CodeResourceNotFound = -32002
	// CodeHeaderMismatch: HTTP headers disagree with the body (2026-07-28).
	CodeHeaderMismatch = -32020
	// CodeMissingClientCapability: the request needs an undeclared client
	// capability (2026-07-28).
	CodeMissingClientCapability = -32021
	// CodeUnsupportedProtocolVersion: the requested protocol version is not
	// served (2026-07-28).
	CodeUnsupportedProtocolVersion = -32022
)

// Error is a JSON-RPC error produced while decoding.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Kind classifies a decoded message.
type Kind uint8

// Message kinds.
const (
	KindRequest      Kind = iota + 1 // has an id and a method
	KindNotification                 // has a method and no id
	KindResponse                     // has result or error and no method
)

// Request is a decoded JSON-RPC envelope. Its slices alias the input.
type Request struct {
	Kind Kind
	// ID is the raw JSON of the id (a string or a number), nil when absent
	// or invalid.
	ID []byte
	// Method is the unescaped method name.
	Method []byte
	// Params is the raw params value, nil when absent.
	Params []byte

	methodBuf [48]byte
}

// Reset clears r for reuse.
func (r *Request) Reset() {
	r.Kind = 0
	r.ID = nil
	r.Method = nil
	r.Params = nil
}

// DecodeRequest decodes one JSON-RPC message from body into r. Batches (JSON
// arrays) are rejected: MCP removed batching in 2025-06-18. On error, r.ID
// holds the request id when it could be read, so the error response can
// carry it.
//
// Syntax errors win over structural ones (-32700 before -32600), and
// duplicate envelope members are refused so that intermediaries and this
// server can never disagree about which "method" or "id" counts.
func DecodeRequest(body []byte, r *Request) *Error {
	r.Reset()
	i := SkipSpace(body, 0)
	if i >= len(body) {
		return &Error{CodeParseError, "Parse error: empty body"}
	}
	if body[i] != '{' {
		if !Valid(body) {
			return &Error{CodeParseError, "Parse error: invalid JSON"}
		}
		if body[i] == '[' {
			return &Error{CodeInvalidRequest, "Invalid Request: batch requests are not supported"}
		}
		return &Error{CodeInvalidRequest, "Invalid Request: the message must be a JSON object"}
	}
	var (
		structural           *Error
		seenJSONRPC, seenID  bool
		seenMethod, seenPar  bool
		hasResult, hasError  bool
		jsonrpcOK, methodStr bool
		rawID, rawMethod     []byte
	)
	setStructural := func(msg string) {
		if structural == nil {
			structural = &Error{CodeInvalidRequest, msg}
		}
	}
	it := NewIterator(body)
	for {
		key, val, ok := it.Next()
		if !ok {
			break
		}
		switch string(key) {
		case "jsonrpc":
			if seenJSONRPC {
				setStructural(`Invalid Request: duplicate "jsonrpc" member`)
			}
			seenJSONRPC = true
			jsonrpcOK = string(val) == `"2.0"`
		case "id":
			if seenID {
				setStructural(`Invalid Request: duplicate "id" member`)
				rawID = nil
			} else {
				rawID = val
			}
			seenID = true
		case "method":
			if seenMethod {
				setStructural(`Invalid Request: duplicate "method" member`)
			}
			seenMethod = true
			rawMethod = val
			methodStr = IsString(val)
		case "params":
			if seenPar {
				setStructural(`Invalid Request: duplicate "params" member`)
			}
			seenPar = true
			r.Params = val
		case "result":
			hasResult = true
		case "error":
			hasError = true
		}
	}
	if err := it.Err(); err != nil {
		r.Reset()
		if err == ErrTooDeep {
			return &Error{CodeParseError, "Parse error: JSON nested too deeply"}
		}
		return &Error{CodeParseError, "Parse error: invalid JSON"}
	}
	if SkipSpace(body, it.End()) != len(body) {
		r.Reset()
		return &Error{CodeParseError, "Parse error: data after the JSON-RPC message"}
	}
	if seenID && validID(rawID) {
		r.ID = rawID
	}
	if structural != nil {
		return structural
	}
	if !seenJSONRPC || !jsonrpcOK {
		return &Error{CodeInvalidRequest, `Invalid Request: "jsonrpc" must be "2.0"`}
	}
	if !seenMethod && (hasResult || hasError) {
		if !seenID {
			return &Error{CodeInvalidRequest, `Invalid Request: a response needs an "id"`}
		}
		r.Kind = KindResponse
		return nil
	}
	if !seenMethod || !methodStr {
		return &Error{CodeInvalidRequest, `Invalid Request: "method" must be a string`}
	}
	r.Method = StringBytes(r.methodBuf[:0], rawMethod)
	if seenID {
		if r.ID == nil {
			return &Error{CodeInvalidRequest, `Invalid Request: "id" must be a string or an integer`}
		}
		r.Kind = KindRequest
	} else {
		r.Kind = KindNotification
	}
	if r.Params != nil && r.Params[0] != '{' {
		return &Error{CodeInvalidParams, `Invalid params: "params" must be an object`}
	}
	return nil
}

// validID reports whether raw is an acceptable MCP request id: a string or
// an integer (MCP forbids null; fractions are refused as JSON-RPC advises).
func validID(raw []byte) bool {
	if len(raw) == 0 {
		return false
	}
	if raw[0] == '"' {
		return true
	}
	if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return false
	}
	for _, c := range raw[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(raw) <= 20
}
