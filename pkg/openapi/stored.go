package openapi

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// DocumentAnnotation is the metadata annotation in which expansion stores
// the raw OpenAPI document of a Tool (gzip, then standard base64), so that
// stoad — which never sees the spec files — can serve it as an MCP
// resource. It is the one annotation stoa interprets.
const DocumentAnnotation = "openapi.stoa.io/document"

// maxStoredDocument bounds the decoded size of a stored document.
const maxStoredDocument = 32 << 20

// encodeDocument compresses raw for DocumentAnnotation. The output is
// deterministic (no gzip header time or name), so applying the same files
// twice is a no-op.
func encodeDocument(raw []byte) string {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// StoredDocument returns the OpenAPI document that expansion stored in o's
// annotations, if any.
func StoredDocument(o *spec.Object) ([]byte, bool) {
	if o == nil {
		return nil, false
	}
	v, ok := o.Metadata.Annotations[DocumentAnnotation]
	if !ok || v == "" {
		return nil, false
	}
	z, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, false
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, false
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxStoredDocument+1))
	if err != nil || len(raw) > maxStoredDocument {
		return nil, false
	}
	return raw, true
}
