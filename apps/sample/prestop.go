package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

// runPrestop is the preStop exec hook (`/app prestop`). The kubelet runs it at deletion, in
// parallel with endpoint removal, and sends SIGTERM only after it returns: sleeping here keeps the
// server accepting while kube-proxy and load balancers stop routing new requests to this pod.
// It notifies the server first (loopback HTTP) so the pod's lifecycle record shows the hook ran.
// A failed notice is reported but never shortens the sleep, because the sleep is what protects traffic.
func runPrestop(cfg config) int {
	notify := func(phase string) {
		url := fmt.Sprintf("http://127.0.0.1:%d/internal/prestop?phase=%s&detail=sleep%%3D%s", cfg.port, phase, cfg.prestop)
		client := &http.Client{Timeout: 2 * time.Second}
		resp, err := client.Post(url, "text/plain", nil)
		if err != nil {
			fmt.Fprintf(os.Stderr, "prestop: could not notify the server (%v); sleeping anyway\n", err)
			return
		}
		_ = resp.Body.Close()
	}
	notify("start")
	time.Sleep(cfg.prestop)
	notify("end")
	return 0
}
