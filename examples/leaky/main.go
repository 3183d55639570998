// Command leaky is memgov's example service: an HTTP service whose memory
// behaviour is chosen by flags or by POST /control, with net/http/pprof and
// expvar mounted, and a webhook endpoint (POST /memgov) that honours
// memgov's degradation advice. See README.md.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"expvar"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// logger writes one JSON object per line to stderr.
type logger struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (lg *logger) event(event string, fields map[string]any) {
	m := map[string]any{}
	for k, v := range fields {
		m[k] = v
	}
	m["time"], m["event"] = time.Now().UTC().Format(time.RFC3339Nano), event
	lg.mu.Lock()
	_ = lg.enc.Encode(m)
	lg.mu.Unlock()
}

func main() {
	os.Exit(run())
}

func run() int {
	var (
		rate, gbuf, burstSize, sawRate, maxTotal sizeFlag
	)
	gbuf.v, burstSize.v, sawRate.v = 64<<10, 64<<20, 16<<20
	mode := flag.String("mode", modeIdle, "memory behaviour: "+strings.Join(modeNames, ", "))
	flag.Var(&rate, "rate", "leak rate: bytes/s for heap, subslice and cache (default 1MiB), goroutines/s for goroutine (default 20)")
	flag.Var(&gbuf, "goroutine-buf", "buffer each leaked goroutine holds")
	flag.Var(&burstSize, "burst-size", "bytes allocated by each burst")
	burstHold := flag.Duration("burst-hold", 5*time.Second, "how long a burst is held, and the pause before the next one")
	burstOnce := flag.Bool("burst-once", false, "allocate a single burst instead of repeating")
	flag.Var(&sawRate, "sawtooth-rate", "bytes/s of short-lived garbage in sawtooth mode")
	flag.Var(&maxTotal, "max-total", "stop leaking after this many bytes (default: no limit)")
	listen := flag.String("listen", "127.0.0.1:6060", "HTTP listen address")
	secretFile := flag.String("webhook-secret-file", "", "file with the webhook secret (whsec_<base64> or raw bytes); without it POST /memgov is refused")
	logEvery := flag.Bool("log", false, "log a JSON status line to stderr every second")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "leaky: unexpected argument %q\n", flag.Arg(0))
		return 2
	}

	lg := &logger{enc: json.NewEncoder(os.Stderr)}
	cfg := Config{
		Mode: *mode, Rate: rate.v, GoroutineBuf: gbuf.v, BurstSize: burstSize.v,
		BurstHold: *burstHold, BurstOnce: *burstOnce, SawtoothRate: sawRate.v, MaxTotal: maxTotal.v,
	}
	if err := cfg.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "leaky: %v\n", err)
		return 2
	}
	leaker := NewLeaker(cfg, lg.event)

	rcv := &Receiver{Log: lg.event}
	if *secretFile != "" {
		content, err := os.ReadFile(*secretFile)
		if err == nil {
			rcv.Key, err = ParseSecret(content)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "leaky: --webhook-secret-file: %v\n", err)
			return 2
		}
	}
	rcv.DropCaches = func() {
		n, b := leaker.DropCache()
		lg.event("cache_dropped", map[string]any{"entries": n, "bytes": b})
	}
	rcv.PauseWork = leaker.SetPaused

	expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
	expvar.Publish("leaker", expvar.Func(func() any { return leaker.Status() }))
	expvar.Publish("reaction", expvar.Func(func() any { return rcv.State() }))

	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/vars", expvar.Handler())
	mux.Handle("/control", controlHandler(leaker, rcv))
	mux.Handle("/memgov", rcv)
	work := rcv.Shed(http.HandlerFunc(workHandler))
	mux.Handle("/work", work)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		work.ServeHTTP(w, r)
	})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "leaky: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	done := make(chan struct{})
	go leaker.Run(done)
	if *logEvery {
		go statusLoop(done, leaker, rcv, lg)
	}
	lg.event("start", map[string]any{"listen": ln.Addr().String(), "pid": os.Getpid(), "mode": cfg.Mode,
		"rate_per_s": cfg.effectiveRate(), "webhooks": len(rcv.Key) > 0})

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(os.Stderr, "leaky: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	close(done)
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	lg.event("stop", nil)
	return 0
}

// workHandler does a little CPU work and answers 200: the load generator's target.
func workHandler(w http.ResponseWriter, r *http.Request) {
	var buf [4096]byte
	for i := range buf {
		buf[i] = byte(i)
	}
	sum := sha256.Sum256(buf[:])
	for i := 0; i < 15; i++ {
		sum = sha256.Sum256(append(buf[:4064:4064], sum[:]...))
	}
	writeJSON(w, http.StatusOK, map[string]string{"ok": "true", "sum": hex.EncodeToString(sum[:8])})
}

// statusLoop logs what the service does, once a second.
func statusLoop(done <-chan struct{}, l *Leaker, rcv *Receiver, lg *logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s := l.Status()
		re := rcv.State()
		lg.event("status", map[string]any{
			"mode": s.Mode, "paused": s.Paused, "rate": s.Rate, "leaked_bytes": s.LeakedBytes,
			"goroutines": s.Goroutines, "stuck_goroutines": s.StuckGoroutines,
			"cache_bytes": s.CacheBytes, "burst_held_bytes": s.BurstHeldBytes,
			"heap_inuse": ms.HeapInuse, "heap_alloc": ms.HeapAlloc, "heap_sys": ms.HeapSys,
			"num_gc": ms.NumGC, "rss_bytes": rssBytes(), "gomemlimit": debug.SetMemoryLimit(-1),
			"shed_fraction": re.ShedFraction,
		})
	}
}

// rssBytes reads VmRSS from /proc/self/status (0 when unavailable).
func rssBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest := strings.TrimPrefix(sc.Text(), "VmRSS:"); rest != sc.Text() {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
