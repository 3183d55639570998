package main

// The memory behaviours. Each one that keeps memory lives in its own named
// function marked //go:noinline, so that a heap profile (inuse_space) and a
// goroutine profile point at it by function and file:line. Buffers are
// filled with non-zero bytes so that their pages are really resident and
// the cgroup's memory.current grows with them.

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	modeIdle      = "idle"
	modeHeap      = "heap"
	modeGoroutine = "goroutine"
	modeSubslice  = "subslice"
	modeCache     = "cache"
	modeSawtooth  = "sawtooth"
	modeBurst     = "burst"
)

var modeNames = []string{modeIdle, modeHeap, modeGoroutine, modeSubslice, modeCache, modeSawtooth, modeBurst}

func validMode(m string) bool {
	for _, n := range modeNames {
		if n == m {
			return true
		}
	}
	return false
}

// Default rates when none is given for the mode.
const (
	defaultByteRate      = 1 << 20 // heap, subslice, cache: bytes per second
	defaultGoroutineRate = 20      // goroutine: goroutines per second
)

// ---- the leaks ------------------------------------------------------------

var (
	leakMu    sync.Mutex
	leakMap   = map[uint64][]byte{} // heap mode: grows, nothing ever deletes
	leakSeq   uint64
	retained  [][]byte              // subslice mode: 64-byte views that pin whole arrays
	stuckChan = make(chan struct{}) // goroutine mode: never sent on; only a reset closes it

	stuckWorkers int64 // goroutines parked in stuckWorker (atomic)

	sink []byte // sawtooth mode: only the latest garbage buffer is reachable
)

// fill writes non-zero bytes over b so that every page is touched.
func fill(b []byte) {
	if len(b) == 0 {
		return
	}
	b[0] = 0xa5
	for n := 1; n < len(b); n *= 2 {
		copy(b[n:], b[:n])
	}
}

// leakIntoGlobalMap allocates n bytes and keeps them in a package-level map
// forever: the classic "global map that only grows".
//
//go:noinline
func leakIntoGlobalMap(n int) {
	b := make([]byte, n)
	fill(b)
	leakMu.Lock()
	leakSeq++
	leakMap[leakSeq] = b
	leakMu.Unlock()
}

// spawnStuckWorker starts a goroutine that holds a buffer and waits on a
// channel nobody ever sends on: the classic goroutine leak.
//
//go:noinline
func spawnStuckWorker(buf int) {
	leakMu.Lock()
	ch := stuckChan
	leakMu.Unlock()
	go stuckWorker(ch, buf)
}

//go:noinline
func stuckWorker(done <-chan struct{}, buf int) {
	atomic.AddInt64(&stuckWorkers, 1)
	defer atomic.AddInt64(&stuckWorkers, -1)
	b := make([]byte, buf)
	fill(b)
	<-done // blocks forever: no sender; only a reset closes the channel
	runtime.KeepAlive(b)
}

// retainSubslice allocates an n-byte array but keeps only a 64-byte
// sub-slice of it; the sub-slice pins the whole array.
//
//go:noinline
func retainSubslice(n int) {
	if n < 128 {
		n = 128
	}
	big := make([]byte, n)
	fill(big)
	small := big[n/2 : n/2+64 : n/2+64]
	leakMu.Lock()
	retained = append(retained, small)
	leakMu.Unlock()
}

// churnGarbage allocates n bytes that become garbage as soon as the next
// call replaces them: allocation without a leak, a GC sawtooth.
//
//go:noinline
func churnGarbage(n int) {
	b := make([]byte, n)
	fill(b)
	sink = b
}

// allocateBurst allocates and touches n bytes that the caller holds for a
// while and then releases.
//
//go:noinline
func allocateBurst(n int) []byte {
	b := make([]byte, n)
	fill(b)
	return b
}

// ---- the cache ------------------------------------------------------------

var (
	cacheMu    sync.Mutex
	cache      = map[string][]byte{}
	cacheBytes int64
)

// cachePut stores a private copy of val under key. The cache has no bound
// and no eviction; only cacheDrop (the degrade reaction) empties it.
//
//go:noinline
func cachePut(key string, val []byte) {
	v := append([]byte(nil), val...)
	cacheMu.Lock()
	if old, ok := cache[key]; ok {
		cacheBytes -= int64(len(old))
	}
	cache[key] = v
	cacheBytes += int64(len(v))
	cacheMu.Unlock()
}

func cacheGet(key string) ([]byte, bool) {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	v, ok := cache[key]
	return v, ok
}

// cacheDrop empties the cache and says what it released.
func cacheDrop() (entries int, bytes int64) {
	cacheMu.Lock()
	entries, bytes = len(cache), cacheBytes
	cache = map[string][]byte{}
	cacheBytes = 0
	cacheMu.Unlock()
	return entries, bytes
}

func cacheStats() (entries int, bytes int64) {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	return len(cache), cacheBytes
}

// cacheValue is the source the cache copies from: one filled buffer.
var cacheValue = func() []byte { b := make([]byte, 1<<20); fill(b); return b }()

// ---- the leaker -----------------------------------------------------------

// Config is what the leaker does. Flags set it at start, /control changes it.
type Config struct {
	Mode         string
	Rate         int64 // bytes/s (heap, subslice, cache) or goroutines/s; 0 = the mode's default
	GoroutineBuf int64
	BurstSize    int64
	BurstHold    time.Duration
	BurstOnce    bool
	SawtoothRate int64 // bytes/s of garbage in sawtooth mode
	MaxTotal     int64 // stop leaking after this many bytes; 0 = no limit
	Paused       bool  // no new leak work is admitted (the degrade reaction)
}

// effectiveRate is the rate the current mode runs at.
func (c Config) effectiveRate() int64 {
	switch c.Mode {
	case modeSawtooth:
		return c.SawtoothRate
	case modeGoroutine:
		if c.Rate > 0 {
			return c.Rate
		}
		return defaultGoroutineRate
	case modeHeap, modeSubslice, modeCache:
		if c.Rate > 0 {
			return c.Rate
		}
		return defaultByteRate
	}
	return 0
}

func (c Config) validate() error {
	if !validMode(c.Mode) {
		return fmt.Errorf("unknown mode %q (one of %v)", c.Mode, modeNames)
	}
	if c.Rate < 0 || c.GoroutineBuf < 0 || c.BurstSize < 0 || c.SawtoothRate < 0 || c.MaxTotal < 0 || c.BurstHold < 0 {
		return fmt.Errorf("sizes, rates and durations must not be negative")
	}
	return nil
}

// Leaker runs the configured behaviour on a 100 ms tick.
type Leaker struct {
	mu          sync.Mutex
	cfg         Config
	leaked      int64   // bytes kept by the leak modes since start or reset
	credit      float64 // work owed at the current rate (bytes or goroutines)
	capReported bool
	burst       []byte
	burstUntil  time.Time
	nextBurst   time.Time
	bursts      int
	log         func(event string, fields map[string]any)
}

func NewLeaker(cfg Config, log func(string, map[string]any)) *Leaker {
	if log == nil {
		log = func(string, map[string]any) {}
	}
	return &Leaker{cfg: cfg, log: log}
}

// Update changes the configuration under the lock; fn may refuse with an error.
func (l *Leaker) Update(fn func(c *Config) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.cfg
	if err := fn(&c); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	if c.Mode != l.cfg.Mode {
		l.credit = 0
		l.bursts = 0
		l.nextBurst = time.Time{}
	}
	l.cfg = c
	return nil
}

// SetPaused stops or resumes admitting new leak work.
func (l *Leaker) SetPaused(p bool) {
	_ = l.Update(func(c *Config) error { c.Paused = p; return nil })
}

// Reset releases everything the leak modes hold (including the stuck
// goroutines) and returns the memory to the OS.
func (l *Leaker) Reset() {
	l.mu.Lock()
	leakMu.Lock()
	leakMap = map[uint64][]byte{}
	retained = nil
	close(stuckChan)
	stuckChan = make(chan struct{})
	leakMu.Unlock()
	cacheDrop()
	l.burst = nil
	l.leaked, l.credit, l.capReported = 0, 0, false
	l.mu.Unlock()
	debug.FreeOSMemory()
}

// DropCache empties the cache (the degrade reaction) and returns the
// memory to the OS; cache mode may then fill it again up to --max-total.
func (l *Leaker) DropCache() (entries int, bytes int64) {
	l.mu.Lock()
	entries, bytes = cacheDrop()
	l.leaked -= bytes
	if l.leaked < 0 {
		l.leaked = 0
	}
	l.capReported = false
	l.mu.Unlock()
	debug.FreeOSMemory()
	return entries, bytes
}

// Run ticks until stop is closed.
func (l *Leaker) Run(stop <-chan struct{}) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			l.step(now, now.Sub(last))
			last = now
		}
	}
}

func clamp(v, lo, hi int64) int64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// pow2Below returns the largest power of two <= v (v > 0): leak units are
// whole size classes, and a rate in KiB or MiB per second divides evenly.
func pow2Below(v int64) int64 {
	p := int64(1)
	for p*2 <= v {
		p *= 2
	}
	return p
}

// admit reports whether n more leaked bytes fit under --max-total.
func (l *Leaker) admit(n int64) bool {
	if l.cfg.MaxTotal <= 0 || l.leaked+n <= l.cfg.MaxTotal {
		return true
	}
	if !l.capReported {
		l.capReported = true
		l.log("max_total_reached", map[string]any{"leaked_bytes": l.leaked, "max_total": l.cfg.MaxTotal})
	}
	l.credit = 0
	return false
}

func (l *Leaker) step(now time.Time, dt time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.cfg

	// A held burst is released on time whatever the mode now is.
	if l.burst != nil && (!now.Before(l.burstUntil) || c.Mode != modeBurst) {
		n := len(l.burst)
		l.burst = nil
		debug.FreeOSMemory()
		l.bursts++
		l.nextBurst = now.Add(c.BurstHold)
		l.log("burst_released", map[string]any{"bytes": n})
	}
	if c.Paused || c.Mode == modeIdle {
		l.credit = 0
		return
	}

	rate := c.effectiveRate()
	if c.Mode != modeBurst {
		// Never catch up more than a second after a stall, but let a slow
		// rate save up for one whole unit (units are at most 8MiB).
		limit := float64(rate)
		if c.Mode != modeGoroutine && limit < 8<<20 {
			limit = 8 << 20
		}
		l.credit += float64(rate) * dt.Seconds()
		if l.credit > limit {
			l.credit = limit
		}
	}
	switch c.Mode {
	case modeHeap, modeCache:
		unit := pow2Below(clamp(rate/10, 4<<10, 1<<20))
		for l.credit >= float64(unit) && l.admit(unit) {
			if c.Mode == modeHeap {
				leakIntoGlobalMap(int(unit))
			} else {
				seq := atomic.AddUint64(&cacheSeq, 1)
				cachePut("item-"+strconv.FormatUint(seq, 10), cacheValue[:unit])
			}
			l.leaked += unit
			l.credit -= float64(unit)
		}
	case modeSubslice:
		unit := pow2Below(clamp(rate/10, 64<<10, 8<<20))
		for l.credit >= float64(unit) && l.admit(unit) {
			retainSubslice(int(unit))
			l.leaked += unit
			l.credit -= float64(unit)
		}
	case modeGoroutine:
		buf := c.GoroutineBuf
		for l.credit >= 1 && l.admit(buf) {
			spawnStuckWorker(int(buf))
			l.leaked += buf
			l.credit--
		}
	case modeSawtooth:
		const unit = 256 << 10
		for l.credit >= unit {
			churnGarbage(unit)
			l.credit -= unit
		}
	case modeBurst:
		if l.burst == nil && !now.Before(l.nextBurst) && !(c.BurstOnce && l.bursts > 0) && c.BurstSize > 0 {
			l.burst = allocateBurst(int(c.BurstSize))
			l.burstUntil = now.Add(c.BurstHold)
			l.log("burst_allocated", map[string]any{"bytes": c.BurstSize, "hold": c.BurstHold.String()})
		}
	}
}

var cacheSeq uint64

// Status is what GET /control, expvar and the log lines show.
type Status struct {
	Mode              string   `json:"mode"`
	Paused            bool     `json:"paused"`
	Rate              string   `json:"rate"`
	RatePerSecond     int64    `json:"rate_per_s"`
	GoroutineBuf      int64    `json:"goroutine_buf"`
	BurstSize         int64    `json:"burst_size"`
	BurstHold         string   `json:"burst_hold"`
	BurstOnce         bool     `json:"burst_once"`
	SawtoothRate      int64    `json:"sawtooth_rate"`
	MaxTotal          int64    `json:"max_total"`
	MaxTotalReached   bool     `json:"max_total_reached"`
	LeakedBytes       int64    `json:"leaked_bytes"`
	MapEntries        int      `json:"map_entries"`
	RetainedSubslices int      `json:"retained_subslices"`
	StuckGoroutines   int64    `json:"stuck_goroutines"`
	CacheEntries      int      `json:"cache_entries"`
	CacheBytes        int64    `json:"cache_bytes"`
	BurstHeldBytes    int      `json:"burst_held_bytes"`
	Bursts            int      `json:"bursts"`
	Goroutines        int      `json:"goroutines"`
	Modes             []string `json:"modes"`
}

func (l *Leaker) Status() Status {
	l.mu.Lock()
	c := l.cfg
	s := Status{
		Mode: c.Mode, Paused: c.Paused, RatePerSecond: c.effectiveRate(),
		GoroutineBuf: c.GoroutineBuf, BurstSize: c.BurstSize, BurstHold: c.BurstHold.String(),
		BurstOnce: c.BurstOnce, SawtoothRate: c.SawtoothRate, MaxTotal: c.MaxTotal,
		MaxTotalReached: l.capReported, LeakedBytes: l.leaked, BurstHeldBytes: len(l.burst),
		Bursts: l.bursts, Modes: modeNames,
	}
	l.mu.Unlock()
	switch c.Mode {
	case modeGoroutine:
		s.Rate = strconv.FormatInt(s.RatePerSecond, 10) + "/s"
	case modeIdle, modeBurst:
		s.Rate = "-"
	default:
		s.Rate = formatSize(s.RatePerSecond) + "/s"
	}
	leakMu.Lock()
	s.MapEntries, s.RetainedSubslices = len(leakMap), len(retained)
	leakMu.Unlock()
	s.StuckGoroutines = atomic.LoadInt64(&stuckWorkers)
	s.CacheEntries, s.CacheBytes = cacheStats()
	s.Goroutines = runtime.NumGoroutine()
	return s
}
