// Command loadgen sends one HTTP request over and over to a server on a Unix
// socket (HTTP/1.1 keep-alive, one connection per worker) and prints one JSON
// line: requests, errors, queries per second and latency percentiles. By
// default the request is a GraphQL POST /query to a gantry engine (-body);
// -method GET -path P measures another API on its socket (the Docker
// daemon's, as a baseline). The loop is bounded both in count (-max) and in
// time (-duration); it only ever talks to the Unix socket it is given.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Seconds     float64 `json:"seconds"`
	QPS         float64 `json:"qps"`
	P50Ms       float64 `json:"p50_ms"`
	P90Ms       float64 `json:"p90_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	Concurrency int     `json:"concurrency"`
}

func main() {
	socket := flag.String("socket", "", "engine Unix socket")
	bodyFile := flag.String("body", "", "file holding the JSON request body (POST)")
	method := flag.String("method", "POST", "HTTP method: POST (with -body) or GET")
	path := flag.String("path", "/query", "request path")
	concurrency := flag.Int("c", 8, "concurrent workers (one connection each)")
	duration := flag.Duration("duration", 5*time.Second, "stop after this long")
	maxRequests := flag.Int64("max", 200000, "stop after this many requests")
	warmup := flag.Int("warmup", 200, "requests sent (not counted) before measuring")
	flag.Parse()
	if *socket == "" || (*method == "POST") == (*bodyFile == "") {
		fmt.Fprintln(os.Stderr, "usage: loadgen -socket PATH (-body FILE | -method GET -path P) [-c N] [-duration D] [-max N]")
		os.Exit(2)
	}
	var body []byte
	if *bodyFile != "" {
		var err error
		if body, err = os.ReadFile(*bodyFile); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(2)
		}
	}
	url := "http://localhost" + *path
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", *socket)
		},
		MaxIdleConnsPerHost: *concurrency,
		MaxConnsPerHost:     *concurrency,
		DisableCompression:  true,
	}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	send := func() error {
		var resp *http.Response
		var err error
		if *method == "GET" {
			resp, err = client.Get(url)
		} else {
			resp, err = client.Post(url, "application/json", bytes.NewReader(body))
		}
		if err != nil {
			return err
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, data)
		}
		if bytes.Contains(data, []byte(`"errors":[`)) {
			return fmt.Errorf("GraphQL error: %.300s", data)
		}
		return nil
	}

	warmupDeadline := time.Now().Add(*duration)
	for i := 0; i < *warmup && time.Now().Before(warmupDeadline); i++ {
		if err := send(); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: warm-up request failed:", err)
			os.Exit(1)
		}
	}

	var issued, errors atomic.Int64
	var firstErr atomic.Value
	latencies := make([][]time.Duration, *concurrency)
	deadline := time.Now().Add(*duration)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			own := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(deadline) && issued.Add(1) <= *maxRequests {
				t0 := time.Now()
				if err := send(); err != nil {
					errors.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				own = append(own, time.Since(t0))
			}
			latencies[w] = own
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := int(p * float64(len(all)-1))
		return float64(all[i].Microseconds()) / 1000
	}
	r := result{
		Requests:    int64(len(all)),
		Errors:      errors.Load(),
		Seconds:     elapsed.Seconds(),
		QPS:         float64(len(all)) / elapsed.Seconds(),
		P50Ms:       pct(0.50),
		P90Ms:       pct(0.90),
		P99Ms:       pct(0.99),
		MaxMs:       pct(1),
		Concurrency: *concurrency,
	}
	if e, ok := firstErr.Load().(string); ok {
		r.FirstError = e
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	if len(all) == 0 {
		os.Exit(1)
	}
}
