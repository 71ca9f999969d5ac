package proxy

// appendUpstreamPath appends the path the proxy sends to an upstream with
// base path base for rest, the escaped request path below the route
// prefix: base + rest, or "/" when both are empty.
func appendUpstreamPath(dst []byte, base string, rest []byte) []byte {
	n := len(dst)
	dst = append(append(dst, base...), rest...)
	if len(dst) == n {
		dst = append(dst, '/')
	}
	return dst
}

// UpstreamURL is the URL the proxy sends a request to: the upstream's
// scheme and host, its base path, then rest — the escaped path below the
// route prefix (Failure.Rest, CallRequest.Path) — and rawQuery. It is the
// proxy's own mapping, for replays and error snapshots.
func UpstreamURL(upstream, rest, rawQuery string) (string, error) {
	_, host, base, tls, err := parseUpstream(upstream)
	if err != nil {
		return "", err
	}
	b := []byte("http://")
	if tls {
		b = []byte("https://")
	}
	b = appendUpstreamPath(append(b, host...), base, []byte(rest))
	if rawQuery != "" {
		b = append(append(b, '?'), rawQuery...)
	}
	return string(b), nil
}
