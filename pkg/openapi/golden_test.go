package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/mcp"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestImportGolden imports each document under testdata/ and compares the
// printed Tool (and its warnings) with testdata/golden/. The Tool must
// also validate and compile into an MCP catalog.
func TestImportGolden(t *testing.T) {
	cases := []struct {
		file, tenant, name, upstream string
		filter                       Filter
		golden                       string
	}{
		{file: "petstore.yaml", tenant: "acme", name: "petstore", golden: "petstore.tool.yaml"},
		{file: "shop.yaml", tenant: "shop", name: "shop-api", golden: "shop.tool.yaml"},
		{file: "shop.yaml", tenant: "shop", name: "orders", upstream: "http://127.0.0.1:9001/shop",
			filter: Filter{Tags: []string{"orders"}}, golden: "shop-orders.tool.yaml"},
		{file: "shop.yaml", tenant: "shop", name: "few", filter: Filter{Operations: []string{"getOrder", "get_catalog_products_sku"}},
			golden: "shop-few.tool.yaml"},
		{file: "swagger2.json", tenant: "legacy", name: "pets2", golden: "swagger2.tool.yaml"},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			doc, err := Load(context.Background(), filepath.Join("testdata", c.file), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			obj, warns, err := doc.Tool(ImportOptions{Tenant: c.tenant, Name: c.name, Upstream: c.upstream, Filter: c.filter})
			if err != nil {
				t.Fatal(err)
			}
			y, err := YAML(obj, c.file)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			for _, w := range warns {
				got.WriteString("# warning: " + w + "\n")
			}
			got.Write(y)
			golden := filepath.Join("testdata", "golden", c.golden)
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("import differs from %s (run go test -update):\n%s", golden, got.String())
			}
			checkApplies(t, got.Bytes(), c.tenant)
		})
	}
}

// checkApplies loads printed YAML like `stoa apply` would, validates it and
// compiles it into an MCP catalog.
func checkApplies(t *testing.T, y []byte, tenant string) {
	t.Helper()
	tenantDoc := "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: " + tenant + "\nspec: {}\n---\n"
	objs, diags := spec.Parse("import.yaml", append([]byte(tenantDoc), y...))
	if diags.HasErrors() {
		t.Fatalf("printed spec does not load:\n%s", diags.Error())
	}
	for _, o := range objs {
		spec.Default(o)
	}
	if diags := spec.Validate(objs, spec.ValidateOptions{}); diags.HasErrors() {
		t.Fatalf("printed spec is invalid:\n%s", diags.Error())
	}
	cat, err := mcp.BuildCatalog(1, objs)
	if err != nil {
		t.Fatalf("printed spec does not compile into MCP tools: %v", err)
	}
	if cat.Len() == 0 {
		t.Fatal("no MCP tools")
	}
}

func TestImportStable(t *testing.T) {
	// The same document always prints the same bytes (map order, $defs).
	var first []byte
	for i := 0; i < 5; i++ {
		doc, err := Load(context.Background(), filepath.Join("testdata", "shop.yaml"), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := doc.Tool(ImportOptions{Tenant: "shop", Name: "shop-api"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(obj)
		if first == nil {
			first = b
		} else if !bytes.Equal(first, b) {
			t.Fatal("import is not deterministic")
		}
	}
}

func TestImportErrors(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ doc, want string }{
		{"openapi: 3.0.0\ninfo: {title: x, version: '1'}\nservers: [{url: \"http://x\"}]\npaths: {}\n", "no operations"},
		{"openapi: 3.0.0\ninfo: {title: x, version: '1'}\npaths:\n  /a:\n    get:\n      responses: {'200': {description: ok}}\n", "lists no servers"},
		{"openapi: 2.5.0\n", "not supported"},
		{"kind: Tool\n", "not an OpenAPI document"},
		{"openapi: [\n", "parse"},
	} {
		doc, err := Parse(ctx, []byte(c.doc), "x.yaml", LoadOptions{})
		if err == nil {
			_, _, err = doc.Tool(ImportOptions{Tenant: "a", Name: "b"})
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error containing %q", c.doc, err, c.want)
		}
	}
	if _, err := Load(ctx, "https://example.com/openapi.yaml", LoadOptions{}); err == nil || !strings.Contains(err.Error(), "remote documents are not fetched") {
		t.Errorf("remote load without AllowRemote: %v", err)
	}
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{
		"getPetById": "get_pet_by_id", "listPets": "list_pets", "HTTPServerStatus": "http_server_status",
		"get-stock-levels": "get_stock_levels", "addPet2": "add_pet2", "Pets.List": "pets_list",
		"__x__": "x", "ÄpfelHolen": "pfel_holen", "": "", "v2Orders": "v2_orders",
	} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
	if got := methodPathName("GET", "/pets/{petId}/photos"); got != "get_pets_pet_id_photos" {
		t.Errorf("methodPathName = %q", got)
	}
}
