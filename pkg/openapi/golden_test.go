package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

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
