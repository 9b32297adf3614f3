package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxSlowSeconds bounds /slow so a forgotten client cannot hold a connection forever.
const maxSlowSeconds = 300

// App holds the server state the handlers and the shutdown path share.
type App struct {
	cfg      config
	life     *Lifecycle
	inflight atomic.Int64
	stopping atomic.Bool // readiness fails from the first sign of shutdown (preStop or SIGTERM)
}

// closeRecorder wraps the listener so "listener-closed" is recorded at the moment new connections
// stop being accepted, which is the instant that matters for endpoint-propagation races.
type closeRecorder struct {
	net.Listener
	once sync.Once
	life *Lifecycle
}

func (c *closeRecorder) Close() error {
	err := c.Listener.Close()
	c.once.Do(func() { c.life.Record("listener-closed", "", nil) })
	return err
}

func (a *App) counted(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.inflight.Add(1)
		defer a.inflight.Add(-1)
		w.Header().Set("X-Pod", a.cfg.pod)
		w.Header().Set("X-Node", a.cfg.node)
		h(w, r)
	}
}

func (a *App) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", a.counted(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"pod\":%q,\"node\":%q}\n", a.cfg.pod, a.cfg.node)
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if a.stopping.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/slow", a.counted(a.slow))
	mux.HandleFunc("/events", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.life.Snapshot())
	})
	mux.HandleFunc("/internal/prestop", a.prestopNotice)
	return mux
}

// slow holds a request in flight. It sends its headers and a first line at once, so a client knows
// the server has the request (and which pod has it) before the disruption, then "done" at the end:
// a body without "done" means the server dropped the request.
func (a *App) slow(w http.ResponseWriter, r *http.Request) {
	secs, err := strconv.ParseFloat(r.URL.Query().Get("seconds"), 64)
	if err != nil || secs < 0 || secs > maxSlowSeconds {
		http.Error(w, fmt.Sprintf("want /slow?seconds=N with 0 <= N <= %d", maxSlowSeconds), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "started pod=%s\n", a.cfg.pod)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	select {
	case <-time.After(time.Duration(secs * float64(time.Second))):
		fmt.Fprintf(w, "done pod=%s\n", a.cfg.pod)
	case <-r.Context().Done():
	}
}

// prestopNotice is called by `app prestop` over loopback; only loopback callers are accepted so a
// load test cannot start a shutdown by accident.
func (a *App) prestopNotice(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || r.Method != http.MethodPost {
		http.Error(w, "POST from loopback only", http.StatusForbidden)
		return
	}
	switch phase := r.URL.Query().Get("phase"); phase {
	case "start":
		a.stopping.Store(true)
		a.life.Record("prestop-start", r.URL.Query().Get("detail"), nil)
	case "end":
		a.life.Record("prestop-end", r.URL.Query().Get("detail"), nil)
	default:
		http.Error(w, "phase must be start or end", http.StatusBadRequest)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (a *App) exit(code int, detail string) {
	a.life.Record("exit", detail, &code)
	os.Exit(code)
}

func serve(cfg config) int {
	a := &App{cfg: cfg, life: newLifecycle(cfg)}
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", cfg.port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "app: cannot listen on :%d: %v\n", cfg.port, err)
		return 1
	}
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	a.life.Record("started", fmt.Sprintf("mode=%s port=%d", cfg.mode, cfg.port), nil)
	go func() {
		if err := srv.Serve(&closeRecorder{Listener: ln, life: a.life}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.exit(1, "serve: "+err.Error())
		}
	}()
	for sig := range sigs {
		name := "sigterm"
		if sig == syscall.SIGINT {
			name = "sigint"
		}
		detail := fmt.Sprintf("inflight=%d", a.inflight.Load())
		if cfg.mode == "ignores-sigterm" {
			// Deliberately wrong: keep serving as if nothing happened; the kubelet SIGKILLs at grace end.
			a.life.Record(name, detail+" ignored", nil)
			continue
		}
		a.life.Record(name, detail, nil)
		a.stopping.Store(true)
		break
	}
	if cfg.mode == "abrupt" {
		// Deliberately wrong: exit without closing the listener or waiting for in-flight requests.
		a.exit(0, fmt.Sprintf("abrupt: dropped inflight=%d", a.inflight.Load()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.drain)
	defer cancel()
	// Shutdown closes the listener, then waits for active requests to finish.
	if err := srv.Shutdown(ctx); err != nil {
		left := a.inflight.Load()
		_ = srv.Close()
		a.life.Record("inflight-drained", fmt.Sprintf("drain timeout after %s: dropped inflight=%d", cfg.drain, left), nil)
	} else {
		a.life.Record("inflight-drained", "", nil)
	}
	switch cfg.mode {
	case "slow-exit":
		// Deliberately wrong: a "cleanup" that outlasts terminationGracePeriodSeconds.
		a.life.Record("cleanup-start", fmt.Sprintf("sleeping %s", cfg.slowExit), nil)
		time.Sleep(cfg.slowExit)
		a.exit(0, "cleanup finished")
	case "exit-nonzero":
		a.exit(1, "exit-nonzero: reporting failure after a clean drain")
	default:
		a.exit(0, "clean shutdown")
	}
	return 0
}
