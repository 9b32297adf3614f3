// Command app is kubedrill's sample workload: a small HTTP server whose shutdown behaviour is
// chosen by SHUTDOWN_MODE, so the suites can show what each common shutdown mistake costs.
//
// Why one binary with modes rather than several apps: the suites compare modes under the same
// disruption, and one image (FROM scratch, static, stdlib only) is cheap to build and load offline.
//
// Usage:
//
//	app            serve on :$PORT (default 8080)
//	app prestop    the preStop exec hook: tell the server a preStop began, sleep $PRESTOP_SECONDS
//
// Environment:
//
//	SHUTDOWN_MODE       graceful | ignores-sigterm | slow-exit | abrupt | exit-nonzero | no-prestop
//	PORT                listen port (8080)
//	PRESTOP_SECONDS     how long the preStop hook sleeps (5)
//	DRAIN_SECONDS       longest wait for in-flight requests after SIGTERM (25)
//	SLOW_EXIT_SECONDS   slow-exit only: the "cleanup" after draining that outlasts the grace period (3600)
//	POD_NAME, NODE_NAME who answered (downward API; hostname / "unknown" otherwise)
//	TERMINATION_LOG     where lifecycle events go for the pod status (/dev/termination-log)
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Modes lists every SHUTDOWN_MODE; see the package comment and apps/sample/README.md.
var Modes = []string{"graceful", "ignores-sigterm", "slow-exit", "abrupt", "exit-nonzero", "no-prestop"}

type config struct {
	mode           string
	port           int
	prestop        time.Duration
	drain          time.Duration
	slowExit       time.Duration
	pod            string
	node           string
	terminationLog string
}

func envDuration(name string, def float64) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return time.Duration(def * float64(time.Second)), nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%s=%q: want a number of seconds >= 0", name, v)
	}
	return time.Duration(f * float64(time.Second)), nil
}

func loadConfig() (config, error) {
	c := config{mode: os.Getenv("SHUTDOWN_MODE"), port: 8080, pod: os.Getenv("POD_NAME"), node: os.Getenv("NODE_NAME")}
	if c.mode == "" {
		c.mode = "graceful"
	}
	known := false
	for _, m := range Modes {
		known = known || m == c.mode
	}
	if !known {
		return c, fmt.Errorf("SHUTDOWN_MODE=%q is not a mode; use one of: %s", c.mode, strings.Join(Modes, ", "))
	}
	if p := os.Getenv("PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return c, fmt.Errorf("PORT=%q: want a TCP port number", p)
		}
		c.port = n
	}
	var err error
	if c.prestop, err = envDuration("PRESTOP_SECONDS", 5); err != nil {
		return c, err
	}
	if c.drain, err = envDuration("DRAIN_SECONDS", 25); err != nil {
		return c, err
	}
	if c.slowExit, err = envDuration("SLOW_EXIT_SECONDS", 3600); err != nil {
		return c, err
	}
	if c.pod == "" {
		c.pod, _ = os.Hostname()
	}
	if c.node == "" {
		c.node = "unknown"
	}
	c.terminationLog = os.Getenv("TERMINATION_LOG")
	if c.terminationLog == "" {
		c.terminationLog = "/dev/termination-log"
	}
	return c, nil
}

func main() {
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(2)
	}
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "prestop":
			os.Exit(runPrestop(cfg))
		case "serve":
		default:
			fmt.Fprintf(os.Stderr, "app: unknown subcommand %q; use `app` (serve) or `app prestop`\n", os.Args[1])
			os.Exit(2)
		}
	}
	os.Exit(serve(cfg))
}
