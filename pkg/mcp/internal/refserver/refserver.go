// Package refserver is a minimal MCP server built on the official Go SDK
// (github.com/modelcontextprotocol/go-sdk): stateless Streamable HTTP with
// JSON responses on net/http. It exists only as the baseline stoa's
// hand-written server is benchmarked against; it is not used at run time.
package refserver

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Tool is one tool to register.
type Tool struct {
	Name        string
	Description string
	InputSchema json.RawMessage
}

// CallFunc performs a tool call and returns the result to send.
type CallFunc func(ctx context.Context, name string, args json.RawMessage) (*mcp.CallToolResult, error)

// New returns an http.Handler serving tools through the SDK.
func New(tools []Tool, call CallFunc) http.Handler {
	srv := mcp.NewServer(&mcp.Implementation{Name: "refserver", Version: "1"}, nil)
	for _, t := range tools {
		name := t.Name
		srv.AddTool(&mcp.Tool{Name: t.Name, Description: t.Description, InputSchema: t.InputSchema},
			func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return call(ctx, name, req.Params.Arguments)
			})
	}
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
}
