package main

// A memgov webhook receiver, small enough to copy into a real service.
//
// memgov POSTs a CloudEvents 1.0 JSON event signed per Standard Webhooks:
//
//	webhook-id:        msg_...           (the same on every retry)
//	webhook-timestamp: 1614265330        (unix seconds)
//	webhook-signature: v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>
//
// The receiver checks the signature, rejects timestamps more than
// Tolerance away from now, handles each webhook-id once, and then follows
// the latest event: warn, degrade and critical apply the advice in
// data.advice; recovered undoes everything. The reaction is:
//
//   - debug.SetMemoryLimit(advice.gomemlimit_bytes) (the soft limit the Go GC works towards),
//   - drop caches when advice.drop_caches is true,
//   - pause optional work (here: the leaker) on degrade and critical,
//   - answer 503 to advice.shed_fraction of the requests wrapped by Shed.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Event is the part of memgov's CloudEvent the receiver uses.
type Event struct {
	SpecVersion string    `json:"specversion"`
	ID          string    `json:"id"`
	Source      string    `json:"source"`
	Type        string    `json:"type"` // io.memgov.warn, .degrade, .critical, .recovered, ...
	Time        string    `json:"time"`
	Data        EventData `json:"data"`
}

type EventData struct {
	Service string `json:"service"`
	Level   string `json:"level"`
	Advice  Advice `json:"advice"`
}

// Advice is what memgov suggests the service does now.
type Advice struct {
	GoMemLimitBytes int64   `json:"gomemlimit_bytes"` // 0: leave the limit alone
	ShedFraction    float64 `json:"shed_fraction"`    // 0..1 of requests to refuse
	DropCaches      bool    `json:"drop_caches"`
}

// ParseSecret reads a secret file's content: "whsec_<base64>" is decoded,
// anything else is used as raw bytes. Surrounding whitespace is ignored.
func ParseSecret(content []byte) ([]byte, error) {
	s := strings.TrimSpace(string(content))
	if s == "" {
		return nil, errors.New("webhook secret is empty")
	}
	if strings.HasPrefix(s, "whsec_") {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if err != nil {
			return nil, errors.New("webhook secret: whsec_ prefix but the rest is not base64")
		}
		return key, nil
	}
	return []byte(s), nil
}

// Sign returns the Standard Webhooks signature header value for a message.
func Sign(key []byte, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// VerifySignature reports whether header (space-separated "v1,<sig>"
// entries; several are allowed during key rotation) holds a valid signature.
func VerifySignature(key []byte, id, timestamp string, body []byte, header string) bool {
	want := []byte(Sign(key, id, timestamp, body))
	for _, sig := range strings.Fields(header) {
		if hmac.Equal([]byte(sig), want) {
			return true
		}
	}
	return false
}

// Receiver is the http.Handler for POST /memgov. Fill the hooks, then
// mount it and wrap the handlers that may shed load with Shed.
type Receiver struct {
	Key       []byte        // nil: every delivery is refused
	Tolerance time.Duration // allowed clock difference; 5 minutes by default

	// Hooks; nil ones are skipped.
	SetMemoryLimit func(int64) int64 // debug.SetMemoryLimit by default
	DropCaches     func()
	PauseWork      func(paused bool)
	Log            func(event string, fields map[string]any)
	Now            func() time.Time

	mu         sync.Mutex
	seen       map[string]time.Time // webhook-id -> when handled
	active     bool                 // a reaction is in force
	savedLimit int64                // memory limit before the first reaction
	st         ReactionState
	shedCredit float64
}

// ReactionState is what the receiver is doing now.
type ReactionState struct {
	Active        bool    `json:"active"`
	LastEvent     string  `json:"last_event"`
	Level         string  `json:"level"`
	MemoryLimit   int64   `json:"gomemlimit_bytes"` // math.MaxInt64: no limit
	ShedFraction  float64 `json:"shed_fraction"`
	Paused        bool    `json:"paused"`
	EventsApplied int64   `json:"events_applied"`
	Duplicates    int64   `json:"duplicates"`
	Rejected      int64   `json:"rejected"`
	RequestsShed  int64   `json:"requests_shed"`
	CacheDrops    int64   `json:"cache_drops"`
}

func (rc *Receiver) now() time.Time {
	if rc.Now != nil {
		return rc.Now()
	}
	return time.Now()
}

func (rc *Receiver) log(event string, f map[string]any) {
	if rc.Log != nil {
		rc.Log(event, f)
	}
}

func (rc *Receiver) setLimit(n int64) int64 {
	if rc.SetMemoryLimit != nil {
		return rc.SetMemoryLimit(n)
	}
	return debug.SetMemoryLimit(n)
}

// State returns a copy of the current reaction state.
func (rc *Receiver) State() ReactionState {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	s := rc.st
	s.MemoryLimit = rc.setLimit(-1) // a negative value reads the limit
	return s
}

func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "POST a memgov CloudEvent", http.StatusMethodNotAllowed)
		return
	}
	if len(rc.Key) == 0 {
		http.Error(w, "webhooks disabled: no --webhook-secret-file", http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	id := r.Header.Get("webhook-id")
	ts := r.Header.Get("webhook-timestamp")
	sig := r.Header.Get("webhook-signature")
	code, msg := rc.verify(id, ts, sig, body)
	if code != http.StatusOK {
		rc.mu.Lock()
		rc.st.Rejected++
		rc.mu.Unlock()
		rc.log("webhook_rejected", map[string]any{"webhook_id": id, "http_status": code, "reason": msg})
		http.Error(w, msg, code)
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil || !strings.HasPrefix(ev.Type, "io.memgov.") {
		http.Error(w, "not a memgov CloudEvent", http.StatusBadRequest)
		return
	}
	status := rc.handle(id, ev)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"status": status, "type": ev.Type})
}

// verify checks the headers and the signature; it returns 200 when the
// delivery is authentic and fresh.
func (rc *Receiver) verify(id, ts, sig string, body []byte) (int, string) {
	if id == "" || ts == "" || sig == "" {
		return http.StatusBadRequest, "missing webhook-id, webhook-timestamp or webhook-signature"
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return http.StatusBadRequest, "webhook-timestamp is not unix seconds"
	}
	tol := rc.tolerance()
	if d := rc.now().Sub(time.Unix(sec, 0)); d > tol || d < -tol {
		return http.StatusUnauthorized, "webhook-timestamp outside tolerance"
	}
	if !VerifySignature(rc.Key, id, ts, body, sig) {
		return http.StatusUnauthorized, "bad webhook-signature"
	}
	return http.StatusOK, ""
}

// handle applies a verified event once per webhook-id.
func (rc *Receiver) handle(id string, ev Event) string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	now := rc.now()
	if rc.seen == nil {
		rc.seen = map[string]time.Time{}
	}
	for k, t := range rc.seen { // older ids fail the timestamp check anyway
		if now.Sub(t) > 2*rc.tolerance() {
			delete(rc.seen, k)
		}
	}
	if _, dup := rc.seen[id]; dup {
		rc.st.Duplicates++
		rc.log("webhook_duplicate", map[string]any{"webhook_id": id, "type": ev.Type})
		return "duplicate"
	}
	rc.seen[id] = now

	name := strings.TrimPrefix(ev.Type, "io.memgov.")
	switch name {
	case "warn", "degrade", "critical":
		rc.degrade(name, ev.Data)
	case "recovered":
		rc.recover()
	default: // oom_kill, profile_captured, livelock, ...: nothing to do here
		rc.log("webhook_ignored", map[string]any{"webhook_id": id, "type": ev.Type})
		return "ignored"
	}
	rc.st.LastEvent, rc.st.Level = name, ev.Data.Level
	rc.st.EventsApplied++
	return "applied"
}

func (rc *Receiver) tolerance() time.Duration {
	if rc.Tolerance > 0 {
		return rc.Tolerance
	}
	return 5 * time.Minute
}

// degrade makes the reaction follow the advice of the latest event.
func (rc *Receiver) degrade(name string, d EventData) {
	a := d.Advice
	if !rc.active {
		rc.savedLimit = rc.setLimit(-1)
		rc.active = true
	}
	limit := rc.savedLimit
	if a.GoMemLimitBytes > 0 {
		limit = a.GoMemLimitBytes
	}
	rc.setLimit(limit)
	pause := name == "degrade" || name == "critical"
	if rc.PauseWork != nil {
		rc.PauseWork(pause) // before dropping caches, so that nothing refills them
	}
	if a.DropCaches && rc.DropCaches != nil {
		rc.DropCaches()
		rc.st.CacheDrops++
	}
	shed := a.ShedFraction
	if math.IsNaN(shed) || shed < 0 {
		shed = 0
	}
	if shed > 1 {
		shed = 1
	}
	rc.st.Active, rc.st.Paused, rc.st.ShedFraction = true, pause, shed
	rc.log("reaction", map[string]any{"cause": name, "level": d.Level,
		"gomemlimit_bytes": limit, "drop_caches": a.DropCaches, "paused": pause, "shed_fraction": shed})
}

// recover undoes the reaction.
func (rc *Receiver) recover() {
	if !rc.active {
		rc.log("reaction", map[string]any{"cause": "recovered", "note": "nothing to undo"})
		return
	}
	rc.setLimit(rc.savedLimit)
	if rc.PauseWork != nil {
		rc.PauseWork(false)
	}
	rc.active = false
	rc.st.Active, rc.st.Paused, rc.st.ShedFraction = false, false, 0
	rc.log("reaction", map[string]any{"cause": "recovered", "gomemlimit_bytes": rc.savedLimit,
		"paused": false, "shed_fraction": 0})
}

// Shed wraps a handler so that it answers 503 to ShedFraction of requests,
// spread evenly (every second request at 0.5).
func (rc *Receiver) Shed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rc.shedOne() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "shedding load under memory pressure", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (rc *Receiver) shedOne() bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.st.ShedFraction <= 0 {
		rc.shedCredit = 0
		return false
	}
	rc.shedCredit += rc.st.ShedFraction
	if rc.shedCredit >= 1-1e-9 {
		rc.shedCredit--
		rc.st.RequestsShed++
		return true
	}
	return false
}
