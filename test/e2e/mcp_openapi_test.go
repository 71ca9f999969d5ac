package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// billingOpenAPI describes the example billing upstream.
const billingOpenAPI = `openapi: 3.0.3
info: {title: Billing, version: "1.0"}
servers:
  - url: http://UPSTREAM/billing
paths:
  /invoices:
    get:
      operationId: listInvoices
      summary: List invoices
      parameters:
        - {name: status, in: query, schema: {type: string, enum: [open, paid, void]}}
      responses: {"200": {description: ok}}
    post:
      operationId: createInvoice
      summary: Create an invoice
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [customer, amount]
              properties:
                id: {type: string, readOnly: true}
                customer: {type: string}
                amount: {type: number, minimum: 0}
      responses: {"201": {description: created}}
  /invoices/{id}:
    get:
      operationId: getInvoice
      summary: Fetch one invoice
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
      responses: {"200": {description: ok}}
`

const billingTool = `apiVersion: stoa.io/v1alpha1
kind: Tool
metadata:
  name: billing-oas
  namespace: acme
spec:
  auth: {type: apiKey}
  openapi: ./api/billing.yaml
  operations:
    - name: get_invoice
      method: GET
      path: /invoices/{id}
      description: Explicit operations win over imported ones.
      input:
        type: object
        properties: {id: {type: string}}
        required: [id]
`

// billingSubscription lets acme's web-shop call the imported Tool.
const billingSubscription = `apiVersion: stoa.io/v1alpha1
kind: Subscription
metadata:
  name: web-shop-billing-oas
  namespace: acme
spec:
  consumer: web-shop
  plan: standard
  tool: billing-oas
`

func writeOpenAPISpecs(t *testing.T, dir, upstream string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "api"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api", "billing.yaml"), []byte(strings.ReplaceAll(billingOpenAPI, "UPSTREAM", upstream)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "billing-oas.yaml"), []byte(billingTool), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMCPOpenAPITool(t *testing.T) {
	e := newMCPEnv(t, 0, nil)
	writeOpenAPISpecs(t, e.Specs, e.Upstream)
	if err := os.WriteFile(filepath.Join(e.Specs, "billing-oas-sub.yaml"), []byte(billingSubscription), 0o644); err != nil {
		t.Fatal(err)
	}

	// validate / diff / apply expand the Tool (the OpenAPI file in the
	// directory is not taken for a spec).
	expect(t, e.D.Stoa("validate", "-f", e.Specs), 0, "validate")
	r := e.D.Stoa("diff", "-f", e.Specs)
	expect(t, r, 2, "diff")
	if !strings.Contains(r.Stdout, "create_invoice") || !strings.Contains(r.Stdout, "Explicit operations win") {
		t.Errorf("diff does not show the imported operations:\n%s", r.Stdout)
	}
	expect(t, e.D.Stoa("apply", "-f", e.Specs), 0, "apply")
	expect(t, e.D.Stoa("diff", "-f", e.Specs), 0, "diff after apply (no-op)")

	cs := sdkConnect(t, httpTransport(e.MCPURL(), bearer(e.AcmeKey), ""), "")
	names, _ := listAll(t, cs)
	for _, want := range []string{"acme__billing-oas__create_invoice", "acme__billing-oas__get_invoice", "acme__billing-oas__list_invoices"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s not listed: %v", want, names)
		}
	}
	res := callOK(t, cs, "acme__billing-oas__list_invoices", map[string]any{"status": "open"})
	if res.IsError || !strings.Contains(text(t, res), "INV-1001") {
		t.Errorf("imported operation call: %s", text(t, res))
	}
	res = callOK(t, cs, "acme__billing-oas__create_invoice", map[string]any{"customer": "Oasis", "amount": 3})
	if res.IsError {
		t.Errorf("create_invoice: %s", text(t, res))
	}
	rr, err := cs.ReadResource(context.Background(), &sdk.ReadResourceParams{URI: "stoa://tools/acme/billing-oas/openapi"})
	if err != nil || rr.Contents[0].MIMEType != "application/yaml" || !strings.Contains(rr.Contents[0].Text, "operationId: createInvoice") {
		t.Errorf("OpenAPI resource: %v %+v", err, rr)
	}

	// A broken reference is reported at the openapi: line.
	os.Rename(filepath.Join(e.Specs, "api"), filepath.Join(e.Specs, "gone"))
	r = e.D.Stoa("validate", "-f", e.Specs)
	expect(t, r, 3, "validate with a missing OpenAPI file")
	if !strings.Contains(r.Stderr, "billing-oas.yaml:8:12") || !strings.Contains(r.Stderr, "no such file") {
		t.Errorf("diagnostic does not point at the openapi: line:\n%s", r.Stderr)
	}
}

func TestImportOpenAPICommand(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "billing.yaml")
	if err := os.WriteFile(doc, []byte(strings.ReplaceAll(billingOpenAPI, "UPSTREAM", "127.0.0.1:9001")), 0o644); err != nil {
		t.Fatal(err)
	}
	r := RunStoa(t, "", "", "import", "openapi", doc, "--tenant", "acme", "--name", "billing", "--include-ops", "getInvoice,createInvoice")
	expect(t, r, 0, "import openapi")
	if !strings.Contains(r.Stdout, "name: get_invoice") || !strings.Contains(r.Stdout, "name: create_invoice") ||
		strings.Contains(r.Stdout, "list_invoices") || !strings.Contains(r.Stdout, "upstream: http://127.0.0.1:9001/billing") {
		t.Errorf("import output:\n%s", r.Stdout)
	}
	out := filepath.Join(dir, "tool.yaml")
	tenant := "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: acme\nspec: {}\n---\n"
	if err := os.WriteFile(out, []byte(tenant+r.Stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	expect(t, RunStoa(t, "", "", "validate", "-f", out), 0, "validate the imported Tool")
	r = RunStoa(t, "", "", "import", "openapi", doc, "--tenant", "acme")
	expect(t, r, 1, "import without --name")
}

func TestMCPOpenAPIGitOps(t *testing.T) {
	up := startUpstreams(t)
	dir := t.TempDir()
	tenants, err := os.ReadFile(filepath.Join(repoRoot(), "examples", "quickstart", "tenants.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "tenants.yaml"), tenants, 0o644)
	writeOpenAPISpecs(t, dir, up)
	d := NewDaemon(t, "--specs", dir, "--specs-poll", "200ms")
	d.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cs := sdkConnect(t, httpTransport("http://stoad/mcp", nil, d.MCPSock), "")
		names, _ := listAll(t, cs)
		if slices.Contains(names, "acme__billing-oas__create_invoice") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GitOps did not import the OpenAPI operations: %v\n%s", names, d.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
