// Command upstreams serves the small example APIs behind examples/quickstart
// (billing, inventory, weather) on one address, so `make demo` and the
// end-to-end tests have real upstreams to proxy to. Each answer echoes the
// gateway headers it received (X-Stoa-Tenant, X-Stoa-Consumer,
// X-Request-Id), which makes what the gateway injects visible.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:9001", "address to serve")
	flag.Parse()
	log.Printf("example upstreams on http://%s (billing, inventory, weather)", *addr)
	srv := &http.Server{Addr: *addr, Handler: newMux(), ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

type invoice struct {
	ID       string  `json:"id"`
	Customer string  `json:"customer"`
	Amount   float64 `json:"amount"`
	Currency string  `json:"currency"`
	Status   string  `json:"status"`
}

func newMux() *http.ServeMux {
	var mu sync.Mutex
	invoices := map[string]invoice{
		"INV-1001": {"INV-1001", "Wile E. Coyote", 129.5, "EUR", "open"},
		"INV-1002": {"INV-1002", "Road Runner Inc", 42, "EUR", "paid"},
	}
	next := 1003
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, r *http.Request, status int, body map[string]any) {
		body["gateway"] = map[string]string{
			"tenant": r.Header.Get("X-Stoa-Tenant"), "consumer": r.Header.Get("X-Stoa-Consumer"),
			"requestId": r.Header.Get("X-Request-Id"),
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /billing/invoices/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inv, ok := invoices[r.PathValue("id")]
		mu.Unlock()
		if !ok {
			reply(w, r, http.StatusNotFound, map[string]any{"error": "no such invoice", "id": r.PathValue("id")})
			return
		}
		reply(w, r, http.StatusOK, map[string]any{"invoice": inv})
	})
	mux.HandleFunc("GET /billing/invoices", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		var list []invoice
		for _, inv := range invoices {
			if s := r.URL.Query().Get("status"); s == "" || s == inv.Status {
				list = append(list, inv)
			}
		}
		mu.Unlock()
		reply(w, r, http.StatusOK, map[string]any{"invoices": list})
	})
	mux.HandleFunc("POST /billing/invoices", func(w http.ResponseWriter, r *http.Request) {
		var in invoice
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil || in.Customer == "" {
			reply(w, r, http.StatusBadRequest, map[string]any{"error": "want a JSON body with customer and amount"})
			return
		}
		mu.Lock()
		in.ID, in.Status = fmt.Sprintf("INV-%d", next), "open"
		if in.Currency == "" {
			in.Currency = "EUR"
		}
		next++
		invoices[in.ID] = in
		mu.Unlock()
		reply(w, r, http.StatusCreated, map[string]any{"invoice": in})
	})
	mux.HandleFunc("GET /inventory/items/{sku}", func(w http.ResponseWriter, r *http.Request) {
		sku := r.PathValue("sku")
		reply(w, r, http.StatusOK, map[string]any{"sku": sku, "inStock": len(sku) * 7, "warehouse": "north"})
	})
	mux.HandleFunc("GET /weather/current/{city}", func(w http.ResponseWriter, r *http.Request) {
		city := r.PathValue("city")
		reply(w, r, http.StatusOK, map[string]any{"city": city, "tempC": 12 + len(city)%10, "sky": "partly cloudy"})
	})
	mux.HandleFunc("GET /weather/forecast/{city}", func(w http.ResponseWriter, r *http.Request) {
		days := 3
		fmt.Sscan(r.URL.Query().Get("days"), &days)
		var out []map[string]any
		for i := 0; i < days && i < 7; i++ {
			out = append(out, map[string]any{"day": i + 1, "highC": 14 + i, "lowC": 6 + i})
		}
		reply(w, r, http.StatusOK, map[string]any{"city": strings.ToLower(r.PathValue("city")), "forecast": out})
	})
	return mux
}
