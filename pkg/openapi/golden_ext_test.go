package openapi_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/stoa-gateway/stoa/internal/golden"
	"github.com/stoa-gateway/stoa/pkg/mcp"
	"github.com/stoa-gateway/stoa/pkg/openapi"
	"github.com/stoa-gateway/stoa/pkg/specload"
)

// TestImportGolden imports each document under testdata/ and compares the
// printed Tool (and its warnings) with testdata/golden/. The Tool must
// also validate and compile into an MCP catalog.
func TestImportGolden(t *testing.T) {
	cases := []struct {
		file, tenant, name, upstream string
		filter                       openapi.Filter
		golden                       string
	}{
		{file: "petstore.yaml", tenant: "acme", name: "petstore", golden: "petstore.tool.yaml"},
		{file: "shop.yaml", tenant: "shop", name: "shop-api", golden: "shop.tool.yaml"},
		{file: "shop.yaml", tenant: "shop", name: "orders", upstream: "http://127.0.0.1:9001/shop",
			filter: openapi.Filter{Tags: []string{"orders"}}, golden: "shop-orders.tool.yaml"},
		{file: "shop.yaml", tenant: "shop", name: "few", filter: openapi.Filter{Operations: []string{"getOrder", "get_catalog_products_sku"}},
			golden: "shop-few.tool.yaml"},
		{file: "swagger2.json", tenant: "legacy", name: "pets2", golden: "swagger2.tool.yaml"},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			doc, err := openapi.Load(context.Background(), filepath.Join("testdata", c.file), openapi.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			obj, warns, err := doc.Tool(openapi.ImportOptions{Tenant: c.tenant, Name: c.name, Upstream: c.upstream, Filter: c.filter})
			if err != nil {
				t.Fatal(err)
			}
			y, err := openapi.YAML(obj, c.file)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			for _, w := range warns {
				got.WriteString("# warning: " + w + "\n")
			}
			got.Write(y)
			golden.Check(t, filepath.Join("testdata", "golden", c.golden), got.Bytes())
			checkApplies(t, got.Bytes(), c.tenant)
		})
	}
}

// checkApplies loads printed openapi.YAML like `stoa apply` would, validates it and
// compiles it into an MCP catalog.
func checkApplies(t *testing.T, y []byte, tenant string) {
	t.Helper()
	tenantDoc := "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: " + tenant + "\nspec: {}\n---\n"
	res, err := specload.Load(t.Context(), []string{"-"}, specload.Options{
		Stdin: bytes.NewReader(append([]byte(tenantDoc), y...)), References: specload.ReferencesStrict})
	if err != nil {
		t.Fatal(err)
	}
	if res.Diagnostics.HasErrors() {
		t.Fatalf("printed spec does not load:\n%s", res.Diagnostics.Error())
	}
	objs := res.Objects
	cat, err := mcp.BuildCatalog(1, objs)
	if err != nil {
		t.Fatalf("printed spec does not compile into MCP tools: %v", err)
	}
	if cat.Len() == 0 {
		t.Fatal("no MCP tools")
	}
}
