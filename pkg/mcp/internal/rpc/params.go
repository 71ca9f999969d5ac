package rpc

// Meta keys of the 2026-07-28 per-request metadata.
const (
	MetaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	MetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	MetaClientInfo         = "io.modelcontextprotocol/clientInfo"
)

// Params holds the members of MCP request params that the server reads.
// Slices alias the request body.
type Params struct {
	// Name is params.name (tools/call, prompts/get), unescaped.
	Name []byte
	// URI is params.uri (resources/read), unescaped.
	URI []byte
	// Cursor is params.cursor, unescaped.
	Cursor []byte
	// HasCursor reports whether a cursor member was present.
	HasCursor bool
	// Arguments is the raw params.arguments value.
	Arguments []byte
	// ProtocolVersion is params.protocolVersion (initialize), unescaped.
	ProtocolVersion []byte
	// Notifications is the raw params.notifications (subscriptions/listen).
	Notifications []byte
	// MetaVersion is _meta["io.modelcontextprotocol/protocolVersion"].
	MetaVersion []byte
	// HasMetaVersion reports whether that member was present.
	HasMetaVersion bool
	// HasMetaCapabilities reports whether
	// _meta["io.modelcontextprotocol/clientCapabilities"] is an object.
	HasMetaCapabilities bool
	// HasMeta reports whether params carried a _meta member.
	HasMeta bool
	// MetaTraceparent and MetaTracestate are _meta.traceparent and
	// _meta.tracestate (W3C trace context, MCP's OpenTelemetry
	// conventions), unescaped; nil when absent or not strings.
	MetaTraceparent, MetaTracestate []byte

	nameBuf, uriBuf, curBuf, verBuf, metaVerBuf, tpBuf [64]byte
}

// Reset clears p for reuse.
func (p *Params) Reset() {
	*p = Params{}
}

// DecodeParams reads the members the server needs from the params object
// raw (which may be nil), the Params of a Request DecodeRequest accepted
// (so valid JSON: it is not validated again). A member of the wrong type is
// an invalid-params error; duplicates of the members read here are
// refused.
func DecodeParams(raw []byte, p *Params) *Error {
	p.Reset()
	if raw == nil {
		return nil
	}
	var seen uint16
	dup := func(bit uint16) bool {
		if seen&bit != 0 {
			return true
		}
		seen |= bit
		return false
	}
	it := NewTrustedIterator(raw)
	for {
		key, val, ok := it.Next()
		if !ok {
			break
		}
		switch string(key) {
		case "name":
			if dup(1) {
				return dupErr("name")
			}
			if !IsString(val) {
				return typeErr("name", "a string")
			}
			p.Name = StringBytes(p.nameBuf[:0], val)
		case "uri":
			if dup(2) {
				return dupErr("uri")
			}
			if !IsString(val) {
				return typeErr("uri", "a string")
			}
			p.URI = StringBytes(p.uriBuf[:0], val)
		case "cursor":
			if dup(4) {
				return dupErr("cursor")
			}
			if string(val) == "null" {
				continue
			}
			if !IsString(val) {
				return typeErr("cursor", "a string")
			}
			p.HasCursor = true
			p.Cursor = StringBytes(p.curBuf[:0], val)
		case "arguments":
			if dup(8) {
				return dupErr("arguments")
			}
			p.Arguments = val
		case "protocolVersion":
			if dup(16) {
				return dupErr("protocolVersion")
			}
			if !IsString(val) {
				return typeErr("protocolVersion", "a string")
			}
			p.ProtocolVersion = StringBytes(p.verBuf[:0], val)
		case "notifications":
			if dup(32) {
				return dupErr("notifications")
			}
			p.Notifications = val
		case "_meta":
			if dup(64) {
				return dupErr("_meta")
			}
			if string(val) == "null" {
				continue
			}
			if val[0] != '{' {
				return typeErr("_meta", "an object")
			}
			p.HasMeta = true
			if err := p.decodeMeta(val); err != nil {
				return err
			}
		}
	}
	if it.Err() != nil {
		return &Error{CodeInvalidParams, "Invalid params: malformed params object"}
	}
	return nil
}

func (p *Params) decodeMeta(raw []byte) *Error {
	it := NewTrustedIterator(raw)
	for {
		key, val, ok := it.Next()
		if !ok {
			break
		}
		switch string(key) {
		case MetaProtocolVersion:
			if p.HasMetaVersion {
				return dupErr("_meta." + MetaProtocolVersion)
			}
			if !IsString(val) {
				return typeErr("_meta."+MetaProtocolVersion, "a string")
			}
			p.HasMetaVersion = true
			p.MetaVersion = StringBytes(p.metaVerBuf[:0], val)
		case MetaClientCapabilities:
			if p.HasMetaCapabilities {
				return dupErr("_meta." + MetaClientCapabilities)
			}
			if val[0] != '{' {
				return typeErr("_meta."+MetaClientCapabilities, "an object")
			}
			p.HasMetaCapabilities = true
		case "traceparent":
			// Trace context is advisory: a malformed one is ignored (the
			// tracer validates it), never an invalid-params error.
			if IsString(val) && p.MetaTraceparent == nil {
				p.MetaTraceparent = StringBytes(p.tpBuf[:0], val)
			}
		case "tracestate":
			if IsString(val) && p.MetaTracestate == nil {
				p.MetaTracestate = StringBytes(nil, val)
			}
		}
	}
	return nil
}

func dupErr(member string) *Error {
	return &Error{CodeInvalidParams, "Invalid params: duplicate \"" + member + "\" member"}
}

func typeErr(member, want string) *Error {
	return &Error{CodeInvalidParams, "Invalid params: \"" + member + "\" must be " + want}
}
