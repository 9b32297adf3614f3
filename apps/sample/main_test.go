package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testApp(t *testing.T) *App {
	t.Helper()
	cfg := config{mode: "graceful", port: 8080, pod: "pod-a", node: "node-1",
		terminationLog: filepath.Join(t.TempDir(), "termination-log")}
	return &App{cfg: cfg, life: newLifecycle(cfg)}
}

func get(t *testing.T, h http.Handler, method, target, remote string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if remote != "" {
		req.RemoteAddr = remote
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestReadinessFailsOncePrestopBegins(t *testing.T) {
	a := testApp(t)
	mux := a.routes()
	if c := get(t, mux, "GET", "/readyz", "").Code; c != 200 {
		t.Fatalf("ready before shutdown: got %d", c)
	}
	if c := get(t, mux, "POST", "/internal/prestop?phase=start", "127.0.0.1:5555").Code; c != 200 {
		t.Fatalf("prestop notice from loopback: got %d", c)
	}
	if c := get(t, mux, "GET", "/readyz", "").Code; c != 503 {
		t.Fatalf("readyz after prestop-start: want 503, got %d", c)
	}
	if got := a.life.Snapshot().Events; len(got) != 1 || got[0].Event != "prestop-start" {
		t.Fatalf("want one prestop-start event, got %+v", got)
	}
	data, err := os.ReadFile(a.cfg.terminationLog)
	if err != nil || !strings.Contains(string(data), "prestop-start") {
		t.Fatalf("termination log should carry prestop-start at once, got %q (%v)", data, err)
	}
}

func TestPrestopNoticeRefusesRemoteCallers(t *testing.T) {
	a := testApp(t)
	if c := get(t, a.routes(), "POST", "/internal/prestop?phase=start", "10.1.2.3:4444").Code; c != 403 {
		t.Fatalf("want 403 for a non-loopback caller, got %d", c)
	}
	if a.stopping.Load() {
		t.Fatal("a refused notice must not start shutdown")
	}
}

func TestRootNamesPodAndNode(t *testing.T) {
	rec := get(t, testApp(t).routes(), "GET", "/", "")
	if rec.Code != 200 || rec.Header().Get("X-Pod") != "pod-a" || !strings.Contains(rec.Body.String(), `"node":"node-1"`) {
		t.Fatalf("got %d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}
}

func TestSlowValidatesAndCompletes(t *testing.T) {
	mux := testApp(t).routes()
	if c := get(t, mux, "GET", "/slow?seconds=abc", "").Code; c != 400 {
		t.Fatalf("bad seconds: want 400, got %d", c)
	}
	if c := get(t, mux, "GET", "/slow?seconds=9999", "").Code; c != 400 {
		t.Fatalf("too long: want 400, got %d", c)
	}
	rec := get(t, mux, "GET", "/slow?seconds=0.01", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "done pod=pod-a") {
		t.Fatalf("want a finished slow response, got %d %q", rec.Code, rec.Body.String())
	}
}

func TestTerminationMessageStaysUnderLimit(t *testing.T) {
	a := testApp(t)
	a.life.Record("started", "", nil)
	for i := 0; i < 200; i++ {
		a.life.Record("sigterm", strings.Repeat("x", 100), nil)
	}
	code := 0
	a.life.Record("exit", "", &code) // dropped: the in-memory log is capped
	msg := a.life.TerminationMessage()
	if len(msg) > maxTerminationMessage {
		t.Fatalf("termination message is %d bytes, limit %d", len(msg), maxTerminationMessage)
	}
	var r Report
	if err := json.Unmarshal(msg, &r); err != nil {
		t.Fatalf("termination message must stay valid JSON: %v", err)
	}
	if r.Events[0].Event != "started" {
		t.Fatalf("the first event must survive trimming, got %q", r.Events[0].Event)
	}
}

func TestUnknownModeIsRefusedWithTheList(t *testing.T) {
	t.Setenv("SHUTDOWN_MODE", "nope")
	_, err := loadConfig()
	if err == nil || !strings.Contains(err.Error(), "graceful") {
		t.Fatalf("want an error listing the modes, got %v", err)
	}
}

func TestMonotonicClockIsReadable(t *testing.T) {
	if a, b := monotonicSeconds(), monotonicSeconds(); a <= 0 || b < a {
		t.Fatalf("CLOCK_MONOTONIC readings %v then %v", a, b)
	}
}
