package main

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks test vector.
const (
	vecSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTimestamp = "1614265330"
	vecPayload   = `{"test": 2432232314}`
	vecSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func vecKey(t *testing.T) []byte {
	t.Helper()
	key, err := ParseSecret([]byte(vecSecret + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestSignatureVector(t *testing.T) {
	key := vecKey(t)
	if got := Sign(key, vecID, vecTimestamp, []byte(vecPayload)); got != vecSignature {
		t.Fatalf("Sign = %s, want %s", got, vecSignature)
	}
	if !VerifySignature(key, vecID, vecTimestamp, []byte(vecPayload), vecSignature) {
		t.Fatal("the test vector does not verify")
	}
	// Several signatures (key rotation): one valid is enough.
	if !VerifySignature(key, vecID, vecTimestamp, []byte(vecPayload), "v1,Zm9v "+vecSignature) {
		t.Fatal("a valid signature after an invalid one does not verify")
	}
}

func TestParseSecretRaw(t *testing.T) {
	key, err := ParseSecret([]byte("  plain secret bytes\n"))
	if err != nil || string(key) != "plain secret bytes" {
		t.Fatalf("ParseSecret raw = %q, %v", key, err)
	}
	if _, err := ParseSecret([]byte("whsec_!!!")); err == nil {
		t.Fatal("bad base64 after whsec_ accepted")
	}
	if _, err := ParseSecret([]byte(" \n")); err == nil {
		t.Fatal("empty secret accepted")
	}
}

// fakeService records what the receiver asked of it.
type fakeService struct {
	limit  int64
	drops  int
	paused bool
}

func newTestReceiver(t *testing.T, now time.Time) (*Receiver, *fakeService) {
	svc := &fakeService{limit: math.MaxInt64}
	rc := &Receiver{
		Key: vecKey(t),
		Now: func() time.Time { return now },
		SetMemoryLimit: func(n int64) int64 {
			old := svc.limit
			if n >= 0 {
				svc.limit = n
			}
			return old
		},
		DropCaches: func() { svc.drops++ },
		PauseWork:  func(p bool) { svc.paused = p },
	}
	return rc, svc
}

func deliver(t *testing.T, h http.Handler, key []byte, id, ts, body, sig string) int {
	t.Helper()
	if sig == "" {
		sig = Sign(key, id, ts, []byte(body))
	}
	req := httptest.NewRequest(http.MethodPost, "/memgov", strings.NewReader(body))
	req.Header.Set("content-type", "application/cloudevents+json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", sig)
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	return rr.Code
}

const degradeEvent = `{"specversion":"1.0","id":"e1","source":"memgovd","type":"io.memgov.degrade",
 "data":{"service":"leaky","level":"degrade",
  "advice":{"gomemlimit_bytes":268435456,"shed_fraction":0.5,"drop_caches":true}}}`

const recoveredEvent = `{"specversion":"1.0","id":"e2","source":"memgovd","type":"io.memgov.recovered",
 "data":{"service":"leaky","level":"ok","advice":{}}}`

func TestVectorDeliveryAccepted(t *testing.T) {
	now := time.Unix(1614265330, 0)
	rc, _ := newTestReceiver(t, now)
	// The vector's payload is not a memgov event: authentic, then refused as 400.
	if code := deliver(t, rc, nil, vecID, vecTimestamp, vecPayload, vecSignature); code != http.StatusBadRequest {
		t.Fatalf("vector delivery: %d, want 400 (verified, not a memgov event)", code)
	}
	if st := rc.State(); st.Rejected != 0 {
		t.Fatalf("vector signature counted as rejected: %+v", st)
	}
}

func TestWrongSignature(t *testing.T) {
	now := time.Unix(1614265330, 0)
	rc, svc := newTestReceiver(t, now)
	bad := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" // signs a different body
	if code := deliver(t, rc, nil, vecID, vecTimestamp, degradeEvent, bad); code != http.StatusUnauthorized {
		t.Fatalf("wrong signature: %d, want 401", code)
	}
	other := []byte("another key")
	if code := deliver(t, rc, other, "msg_2", vecTimestamp, degradeEvent, ""); code != http.StatusUnauthorized {
		t.Fatalf("signed with another key: %d, want 401", code)
	}
	if code := deliver(t, rc, nil, "msg_3", vecTimestamp, degradeEvent, "v1"); code != http.StatusUnauthorized {
		t.Fatalf("malformed signature: %d, want 401", code)
	}
	if svc.drops != 0 || svc.paused || svc.limit != math.MaxInt64 {
		t.Fatalf("a refused delivery changed the service: %+v", svc)
	}
}

func TestStaleTimestamp(t *testing.T) {
	now := time.Unix(1614265330, 0)
	rc, svc := newTestReceiver(t, now)
	key := vecKey(t)
	for _, off := range []time.Duration{-6 * time.Minute, 6 * time.Minute} {
		ts := strconv.FormatInt(now.Add(off).Unix(), 10)
		if code := deliver(t, rc, key, "msg_stale", ts, degradeEvent, ""); code != http.StatusUnauthorized {
			t.Fatalf("timestamp %v away: %d, want 401", off, code)
		}
	}
	ts := strconv.FormatInt(now.Add(-4*time.Minute).Unix(), 10)
	if code := deliver(t, rc, key, "msg_fresh", ts, degradeEvent, ""); code != http.StatusOK {
		t.Fatalf("timestamp 4 min old: %d, want 200", code)
	}
	if code := deliver(t, rc, key, "msg_nots", "yesterday", degradeEvent, ""); code != http.StatusBadRequest {
		t.Fatalf("non-numeric timestamp: %d, want 400", code)
	}
	if svc.drops != 1 {
		t.Fatalf("drops = %d, want 1", svc.drops)
	}
}

func TestReplayedID(t *testing.T) {
	now := time.Unix(1614265330, 0)
	rc, svc := newTestReceiver(t, now)
	key := vecKey(t)
	for i := 0; i < 3; i++ { // a retry carries the same id
		if code := deliver(t, rc, key, "msg_once", vecTimestamp, degradeEvent, ""); code != http.StatusOK {
			t.Fatalf("delivery %d: %d, want 200", i, code)
		}
	}
	st := rc.State()
	if svc.drops != 1 || st.EventsApplied != 1 || st.Duplicates != 2 {
		t.Fatalf("replays applied again: drops=%d state=%+v", svc.drops, st)
	}
}

func TestDegradeThenRecovered(t *testing.T) {
	now := time.Unix(1614265330, 0)
	rc, svc := newTestReceiver(t, now)
	key := vecKey(t)
	svc.limit = 1 << 30 // the service started with GOMEMLIMIT=1GiB

	if code := deliver(t, rc, key, "msg_d", vecTimestamp, degradeEvent, ""); code != http.StatusOK {
		t.Fatalf("degrade: %d", code)
	}
	if svc.limit != 268435456 || svc.drops != 1 || !svc.paused {
		t.Fatalf("after degrade: %+v", svc)
	}
	work := rc.Shed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	count503 := func(n int) int {
		c := 0
		for i := 0; i < n; i++ {
			rr := httptest.NewRecorder()
			work.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/work", nil))
			if rr.Code == http.StatusServiceUnavailable {
				c++
			}
		}
		return c
	}
	if got := count503(100); got != 50 {
		t.Fatalf("shed %d of 100 requests at 0.5, want 50", got)
	}

	if code := deliver(t, rc, key, "msg_r", vecTimestamp, recoveredEvent, ""); code != http.StatusOK {
		t.Fatalf("recovered: %d", code)
	}
	if svc.limit != 1<<30 || svc.paused {
		t.Fatalf("after recovered: %+v, want the limit back at 1GiB and work resumed", svc)
	}
	if got := count503(100); got != 0 {
		t.Fatalf("shed %d requests after recovered, want 0", got)
	}
	st := rc.State()
	if st.Active || st.ShedFraction != 0 || st.LastEvent != "recovered" || st.RequestsShed != 50 {
		t.Fatalf("state after recovered: %+v", st)
	}
}

func TestWarnDoesNotPause(t *testing.T) {
	now := time.Unix(1614265330, 0)
	rc, svc := newTestReceiver(t, now)
	key := vecKey(t)
	warn := strings.Replace(degradeEvent, "io.memgov.degrade", "io.memgov.warn", 1)
	warn = strings.Replace(warn, `"drop_caches":true`, `"drop_caches":false`, 1)
	if code := deliver(t, rc, key, "msg_w", vecTimestamp, warn, ""); code != http.StatusOK {
		t.Fatalf("warn: %d", code)
	}
	if svc.paused || svc.drops != 0 || svc.limit != 268435456 {
		t.Fatalf("after warn: %+v", svc)
	}
}

func TestNoSecretRefuses(t *testing.T) {
	rc := &Receiver{}
	if code := deliver(t, rc, []byte("x"), "msg", vecTimestamp, degradeEvent, ""); code != http.StatusForbidden {
		t.Fatalf("without a secret: %d, want 403", code)
	}
}
