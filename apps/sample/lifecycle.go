package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Event is one lifecycle step with its wall-clock time (Unix seconds) and, because containers
// share the host kernel's CLOCK_MONOTONIC, the monotonic time too: a test on the same machine can
// place it exactly on its own timeline, while a remote cluster's consumers use the wall time.
type Event struct {
	Event  string  `json:"event"`
	Time   float64 `json:"time"`
	Mono   float64 `json:"mono"`
	Detail string  `json:"detail,omitempty"`
	Code   *int    `json:"code,omitempty"`
}

// Report is what /events returns and what goes to the termination message.
type Report struct {
	Pod    string  `json:"pod"`
	Node   string  `json:"node"`
	Mode   string  `json:"mode"`
	Events []Event `json:"events"`
}

// maxTerminationMessage is the kubelet's limit for one container's termination message (4096 bytes);
// we stay below it so nothing we write is cut mid-JSON.
const maxTerminationMessage = 4000

// maxEvents bounds memory when something repeats (a SIGTERM sent in a loop).
const maxEvents = 64

// Lifecycle records events and mirrors them to the termination log after every event, not just at
// exit: a SIGKILLed process never reaches its exit code path, yet the kubelet still reads the file,
// so the pod status keeps "sigterm received at ..." even for the modes that get killed.
type Lifecycle struct {
	mu      sync.Mutex // guards report and dropped
	report  Report
	dropped int
	writeMu sync.Mutex // serialises termination-log writes; each write takes a fresh snapshot
	path    string
	warned  bool
}

func newLifecycle(cfg config) *Lifecycle {
	return &Lifecycle{report: Report{Pod: cfg.pod, Node: cfg.node, Mode: cfg.mode, Events: []Event{}}, path: cfg.terminationLog}
}

func monotonicSeconds() float64 {
	var ts syscall.Timespec
	// CLOCK_MONOTONIC = 1. Raw syscall because the stdlib hides the monotonic reading's origin.
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

func wallSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// Record appends an event, logs it to stdout and rewrites the termination log.
func (l *Lifecycle) Record(name, detail string, code *int) Event {
	ev := Event{Event: name, Time: wallSeconds(time.Now()), Mono: monotonicSeconds(), Detail: detail, Code: code}
	l.mu.Lock()
	if len(l.report.Events) >= maxEvents {
		l.dropped++
		l.mu.Unlock()
		return ev
	}
	l.report.Events = append(l.report.Events, ev)
	l.mu.Unlock()
	line, _ := json.Marshal(ev)
	fmt.Printf("lifecycle %s\n", line)
	l.writeTerminationLog()
	return ev
}

// Snapshot returns a copy of the report for /events.
func (l *Lifecycle) Snapshot() Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.report
	r.Events = append([]Event(nil), l.report.Events...)
	return r
}

// TerminationMessage renders the report compactly, under maxTerminationMessage bytes. If too long,
// details go first, then the oldest events after "started" (the shutdown sequence matters most).
func (l *Lifecycle) TerminationMessage() []byte {
	r := l.Snapshot()
	b, _ := json.Marshal(r)
	if len(b) <= maxTerminationMessage {
		return b
	}
	for i := range r.Events {
		r.Events[i].Detail = ""
	}
	for {
		b, _ = json.Marshal(r)
		if len(b) <= maxTerminationMessage || len(r.Events) <= 2 {
			return b
		}
		r.Events = append(r.Events[:1], r.Events[2:]...)
	}
}

func (l *Lifecycle) writeTerminationLog() {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	msg := l.TerminationMessage()
	if err := os.WriteFile(l.path, msg, 0o644); err != nil && !l.warned {
		l.warned = true
		fmt.Fprintf(os.Stderr, "app: cannot write termination message to %s (%v); lifecycle events stay available at /events only\n", l.path, err)
	}
}
