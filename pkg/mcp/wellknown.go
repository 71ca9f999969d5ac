package mcp

import (
	"encoding/json"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
)

// resourceURL is the canonical MCP endpoint URL (the OAuth resource).
func (s *Server) resourceURL(ctx *fasthttp.RequestCtx) string {
	if s.opts.ResourceURL != "" {
		return s.opts.ResourceURL
	}
	scheme := "http"
	if ctx.IsTLS() {
		scheme = "https"
	}
	return scheme + "://" + string(ctx.Host()) + s.opts.Path
}

// metadataURL is where the protected-resource metadata of the endpoint is
// served: the well-known prefix inserted before the resource's path
// (RFC 9728 §3.1).
func (s *Server) metadataURL(ctx *fasthttp.RequestCtx) string {
	res := s.resourceURL(ctx)
	i := strings.Index(res, "://")
	if i < 0 {
		return res
	}
	j := strings.IndexByte(res[i+3:], '/')
	if j < 0 {
		return res + "/.well-known/oauth-protected-resource"
	}
	origin, path := res[:i+3+j], res[i+3+j:]
	return origin + "/.well-known/oauth-protected-resource" + strings.TrimSuffix(path, "/")
}

// authorizationServers lists the issuers advertised to unauthenticated
// clients (every tenant's).
func (s *Server) authorizationServers() []string {
	if s.opts.AuthorizationServers != nil {
		return s.opts.AuthorizationServers("")
	}
	return s.cat.Load().AuthorizationServers("")
}

// serveMetadata answers RFC 9728 protected-resource metadata. It needs no
// credential: it is how a client learns where to get one.
func (s *Server) serveMetadata(ctx *fasthttp.RequestCtx) {
	if m := string(ctx.Method()); m != fasthttp.MethodGet && m != fasthttp.MethodHead {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		s.writeHTTPError(ctx, nil, &rpcError{status: fasthttp.StatusMethodNotAllowed, code: rpc.CodeInvalidRequest,
			message: "Method not allowed"})
		return
	}
	servers := s.authorizationServers()
	if len(servers) == 0 {
		// RFC 9728 allows omitting authorization_servers, but MCP requires
		// at least one; a gateway that only takes API keys has no OAuth
		// story to advertise.
		s.writeHTTPError(ctx, nil, &rpcError{status: fasthttp.StatusNotFound, code: rpc.CodeInvalidRequest,
			message: "Not found: no OAuth authorization server is configured; this gateway accepts API keys " +
				"(configure a Tenant identity issuer or a Tool auth issuer to use OAuth)"})
		return
	}
	doc := struct {
		Resource               string   `json:"resource"`
		AuthorizationServers   []string `json:"authorization_servers"`
		BearerMethodsSupported []string `json:"bearer_methods_supported"`
		ScopesSupported        []string `json:"scopes_supported,omitempty"`
		ResourceName           string   `json:"resource_name,omitempty"`
	}{s.resourceURL(ctx), servers, []string{"header"}, s.opts.ScopesSupported, s.opts.ServerName + " MCP"}
	body, _ := json.Marshal(doc)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "max-age=300")
	ctx.Response.Header.Set("Access-Control-Allow-Origin", "*")
	ctx.SetBody(body)
}
