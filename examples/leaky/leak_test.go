package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// step drives the leaker by hand: each call is one second of work.
func TestLeakerModes(t *testing.T) {
	l := NewLeaker(Config{Mode: modeHeap, Rate: 1 << 20, GoroutineBuf: 4 << 10, BurstSize: 1 << 20, BurstHold: time.Second}, nil)
	defer l.Reset()
	now := time.Unix(0, 0)
	sec := func() { now = now.Add(time.Second); l.step(now, time.Second) }

	sec()
	if s := l.Status(); s.LeakedBytes != 1<<20 || s.MapEntries == 0 {
		t.Fatalf("heap: %+v", s)
	}
	l.SetPaused(true)
	sec()
	if s := l.Status(); s.LeakedBytes != 1<<20 {
		t.Fatalf("paused leaker still leaks: %+v", s)
	}
	l.SetPaused(false)

	_ = l.Update(func(c *Config) error { c.Mode, c.Rate = modeGoroutine, 5; return nil })
	sec()
	deadline := time.Now().Add(2 * time.Second)
	for l.Status().StuckGoroutines < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := l.Status(); s.StuckGoroutines != 5 {
		t.Fatalf("goroutine: %+v", s)
	}

	_ = l.Update(func(c *Config) error {
		c.Mode, c.Rate, c.MaxTotal = modeCache, 1<<20, (1<<20)+(1<<20)+5*(4<<10)
		return nil
	})
	sec()
	sec()
	if s := l.Status(); s.CacheBytes != 1<<20 || !s.MaxTotalReached {
		t.Fatalf("cache with max_total: %+v", s)
	}
	if n, b := l.DropCache(); n == 0 || b != 1<<20 {
		t.Fatalf("DropCache = %d, %d", n, b)
	}

	_ = l.Update(func(c *Config) error { c.Mode, c.MaxTotal = modeSubslice, 0; return nil })
	sec()
	if s := l.Status(); s.RetainedSubslices == 0 {
		t.Fatalf("subslice: %+v", s)
	}

	_ = l.Update(func(c *Config) error { c.Mode = modeBurst; return nil })
	sec()
	if s := l.Status(); s.BurstHeldBytes != 1<<20 {
		t.Fatalf("burst not held: %+v", s)
	}
	sec()
	if s := l.Status(); s.BurstHeldBytes != 0 || s.Bursts != 1 {
		t.Fatalf("burst not released: %+v", s)
	}

	l.Reset()
	deadline = time.Now().Add(2 * time.Second)
	for l.Status().StuckGoroutines > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := l.Status(); s.LeakedBytes != 0 || s.MapEntries != 0 || s.StuckGoroutines != 0 || s.RetainedSubslices != 0 {
		t.Fatalf("after reset: %+v", s)
	}
}

// A rate below one unit per tick still leaks, in whole units.
func TestLeakerSlowRate(t *testing.T) {
	l := NewLeaker(Config{Mode: modeHeap, Rate: 1 << 10}, nil)
	defer l.Reset()
	now := time.Unix(0, 0)
	for i := 0; i < 80; i++ { // 8 s of 100 ms ticks
		now = now.Add(100 * time.Millisecond)
		l.step(now, 100*time.Millisecond)
	}
	if s := l.Status(); s.LeakedBytes != 8<<10 {
		t.Fatalf("1KiB/s for 8 s leaked %d bytes, want 8KiB", s.LeakedBytes)
	}
}

func TestControlEndpoint(t *testing.T) {
	l := NewLeaker(Config{Mode: modeIdle, GoroutineBuf: 1 << 10}, nil)
	h := controlHandler(l, &Receiver{})
	post := func(target, ctype, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		return rr
	}
	if rr := post("/control?mode=heap&rate=2MiB/s", "", ""); rr.Code != 200 || !strings.Contains(rr.Body.String(), `"rate": "2MiB/s"`) {
		t.Fatalf("query: %d %s", rr.Code, rr.Body)
	}
	if rr := post("/control", "application/json", `{"mode":"goroutine","rate":50,"goroutine-buf":"8KiB","paused":true}`); rr.Code != 200 {
		t.Fatalf("json: %d %s", rr.Code, rr.Body)
	}
	if s := l.Status(); s.Mode != modeGoroutine || s.RatePerSecond != 50 || s.GoroutineBuf != 8<<10 || !s.Paused {
		t.Fatalf("after json: %+v", s)
	}
	if rr := post("/control", "application/x-www-form-urlencoded", "mode=sawtooth"); rr.Code != 200 || l.Status().Mode != modeSawtooth {
		t.Fatalf("form: %d %s", rr.Code, rr.Body)
	}
	for _, bad := range []string{"/control?mode=nope", "/control?rate=fast", "/control?colour=red"} {
		if rr := post(bad, "", ""); rr.Code != 400 {
			t.Fatalf("%s: %d, want 400", bad, rr.Code)
		}
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/control", nil))
	if rr.Code != 200 || !strings.Contains(rr.Body.String(), `"mode": "sawtooth"`) {
		t.Fatalf("GET: %d %s", rr.Code, rr.Body)
	}
}
