package pubsub

import (
	"sync"
	"testing"
)

func drain[T any](ch <-chan T) []T {
	var out []T
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, v)
		default:
			return out
		}
	}
}

func TestHubFansOutAndDropsForSlowSubscribers(t *testing.T) {
	var h Hub[int]
	fast, cancelFast := h.Subscribe(8)
	slow, cancelSlow := h.Subscribe(2)
	defer cancelFast()
	defer cancelSlow()
	for i := 1; i <= 5; i++ {
		if n := h.Publish(i); n != 2 {
			t.Fatalf("Publish reports %d subscribers, want 2", n)
		}
	}
	if got := drain(fast); len(got) != 5 || got[0] != 1 || got[4] != 5 {
		t.Fatalf("fast subscriber got %v", got)
	}
	if got := drain(slow); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("slow subscriber got %v, want the first two and nothing blocking", got)
	}
}

func TestHubSubscribeWithFirstValues(t *testing.T) {
	var h Hub[string]
	ch, cancel := h.Subscribe(1, "last")
	defer cancel()
	h.Publish("next") // the buffer holds "last": dropped
	if got := drain(ch); len(got) != 1 || got[0] != "last" {
		t.Fatalf("got %v", got)
	}
	// first values never block, whatever buf says.
	ch2, cancel2 := h.Subscribe(0, "a", "b")
	defer cancel2()
	if got := drain(ch2); len(got) != 2 {
		t.Fatalf("got %v", got)
	}
}

func TestHubCancelEndAllAndClose(t *testing.T) {
	var h Hub[int]
	a, cancelA := h.Subscribe(1)
	cancelA()
	cancelA() // idempotent
	if _, ok := <-a; ok {
		t.Fatal("cancelled channel is open")
	}
	b, cancelB := h.Subscribe(1)
	h.EndAll()
	if _, ok := <-b; ok {
		t.Fatal("EndAll left a channel open")
	}
	cancelB() // after EndAll: no double close
	c, cancelC := h.Subscribe(1)
	defer cancelC()
	if h.Len() != 1 {
		t.Fatalf("Len = %d after EndAll and a new subscription", h.Len())
	}
	h.Close()
	if _, ok := <-c; ok {
		t.Fatal("Close left a channel open")
	}
	d, cancelD := h.Subscribe(1)
	defer cancelD()
	if _, ok := <-d; ok {
		t.Fatal("a subscription after Close is open")
	}
	if n := h.Publish(1); n != 0 {
		t.Fatalf("Publish after Close reports %d subscribers", n)
	}
}

func TestHubConcurrentUse(t *testing.T) {
	var h Hub[int]
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 100 {
				ch, cancel := h.Subscribe(4)
				h.Publish(1)
				drain(ch)
				cancel()
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 100 {
				h.Publish(i)
			}
		}()
	}
	wg.Wait()
	h.Close()
	if h.Len() != 0 {
		t.Fatalf("Len = %d after Close", h.Len())
	}
}
