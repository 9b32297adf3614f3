// Command kubedrill-runc is an OCI runtime wrapper for hosts whose capability bounding set
// lacks capabilities that Docker 20.10 grants to --privileged containers (moby#42906,
// fixed only in Docker 23). runc then fails with "unable to apply caps". The wrapper removes
// every capability missing from the bounding set from the bundle's config.json (create/run)
// and from the --process JSON (exec), then execs the real runc with the same arguments.
// On a host with a full bounding set it changes nothing.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

func boundingSet() (map[string]bool, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "CapBnd:") {
			v, err := strconv.ParseUint(strings.TrimSpace(line[7:]), 16, 64)
			if err != nil {
				return nil, err
			}
			allowed := map[string]bool{}
			for i, n := range capNames {
				if v&(1<<uint(i)) != 0 {
					allowed[n] = true
				}
			}
			return allowed, nil
		}
	}
	return nil, fmt.Errorf("no CapBnd line in /proc/self/status")
}

func filterList(v interface{}, allowed map[string]bool) interface{} {
	list, ok := v.([]interface{})
	if !ok {
		return v
	}
	out := []interface{}{}
	for _, c := range list {
		if s, ok := c.(string); ok && !allowed[s] {
			continue
		}
		out = append(out, c)
	}
	return out
}

func filterCaps(process map[string]interface{}, allowed map[string]bool) {
	caps, ok := process["capabilities"].(map[string]interface{})
	if !ok {
		return
	}
	for k, v := range caps {
		caps[k] = filterList(v, allowed)
	}
}

// rewrite loads a JSON file, applies fn to its process object and writes it back in place.
func rewrite(path string, processOf func(map[string]interface{}) map[string]interface{}, allowed map[string]bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc map[string]interface{}
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	p := processOf(doc)
	if p == nil {
		return nil
	}
	filterCaps(p, allowed)
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

func flagValue(args []string, names ...string) string {
	for i, a := range args {
		for _, n := range names {
			if a == n && i+1 < len(args) {
				return args[i+1]
			}
			if strings.HasPrefix(a, n+"=") {
				return a[len(n)+1:]
			}
		}
	}
	return ""
}

func main() {
	real := os.Getenv("KUBEDRILL_REAL_RUNC")
	if real == "" {
		real = "/usr/sbin/runc"
	}
	args := os.Args[1:]
	allowed, err := boundingSet()
	if err == nil {
		sub := ""
		subIdx := -1
		for i, a := range args {
			if a == "create" || a == "run" || a == "exec" {
				sub, subIdx = a, i
				break
			}
		}
		if subIdx >= 0 {
			rest := args[subIdx+1:]
			switch sub {
			case "create", "run":
				bundle := flagValue(rest, "--bundle", "-b")
				if bundle == "" {
					bundle, _ = os.Getwd()
				}
				err = rewrite(filepath.Join(bundle, "config.json"), func(d map[string]interface{}) map[string]interface{} {
					p, _ := d["process"].(map[string]interface{})
					return p
				}, allowed)
			case "exec":
				if p := flagValue(rest, "--process", "-p"); p != "" {
					err = rewrite(p, func(d map[string]interface{}) map[string]interface{} { return d }, allowed)
				}
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubedrill-runc: capability filter skipped: %v\n", err)
	}
	if err := syscall.Exec(real, append([]string{real}, args...), os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "kubedrill-runc: exec %s: %v\n", real, err)
		os.Exit(127)
	}
}
