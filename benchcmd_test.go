package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"
)

// TestBenchJSON runs `sepmbot bench --json` at a small size (the simulator as a
// child process of this test binary, through TestMain) and checks that every field
// the issue names is present and sane. It asserts no timing: the figures are the
// bench's to print.
func TestBenchJSON(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	cmd := &BenchCmd{
		Clients: 2000, Heartbeat: time.Second, Changed: 0.10, PollInterval: time.Second, Roaming: 10, PolicyFetch: 0.7,
		SimWindow: 500 * time.Millisecond, Repeat: 1, RouterUsers: 8, RouterDuration: 500 * time.Millisecond,
		Data: t.TempDir(), JSON: true, Timeout: 2 * time.Minute,
		simEnv: []string{"SEPMBOT_TEST_MAIN=1"},
	}
	g := &Globals{Ctx: context.Background(), Log: slog.New(slog.DiscardHandler), Out: &out}
	if err := cmd.Run(g); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	line := strings.TrimSpace(out.String())
	if strings.Count(line, "\n") != 0 {
		t.Fatalf("--json printed more than one line:\n%s", line)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, line)
	}
	num := func(k string) float64 {
		v, ok := m[k]
		if !ok {
			t.Errorf("field %s missing", k)
			return 0
		}
		f, ok := v.(float64)
		if !ok {
			t.Errorf("field %s = %v, not a number", k, v)
		}
		return f
	}
	positive := []string{"sweep_seconds", "sweep_bytes", "sweep_floor_seconds", "incremental_poll_seconds",
		"incremental_poll_bytes", "wait_full_sweep_seconds", "wait_full_sweep_bytes", "incremental_poll_time_share", "incremental_poll_bytes_share", "bot_rss_bytes", "sim_rss_bytes", "router_events_per_second"}
	for _, k := range positive {
		if v := num(k); v <= 0 {
			t.Errorf("%s = %v, want > 0", k, v)
		}
	}
	if v := num("clients"); v != 2000 {
		t.Errorf("clients = %v, want 2000", v)
	}
	if v := num("sweep_computers"); v != 2000 {
		t.Errorf("sweep_computers = %v, want every client", v)
	}
	if v := num("handshakes_per_sweep"); v < 1 {
		t.Errorf("handshakes_per_sweep = %v, want >= 1", v)
	}
	if v := num("wait_end_latency_seconds"); v < 0 {
		t.Errorf("wait_end_latency_seconds = %v: the next step started before the deadline", v)
	}
	if v := num("sim_cpu_cores"); v < 0 {
		t.Errorf("sim_cpu_cores = %v", v)
	}
	if inc, full := num("incremental_poll_bytes"), num("sweep_bytes"); inc >= full {
		t.Errorf("incremental poll moved %v bytes, a full sweep %v: it asked for everything", inc, full)
	}
	if n := num("incremental_poll_computers"); n <= 0 || n >= 2000 {
		t.Errorf("incremental_poll_computers = %v, want some but not all of 2000", n)
	}
	if m["wait_step"] != "wait-disable" || m["wait_next_step"] == "" {
		t.Errorf("the rotation's wait: %v -> %v, want wait-disable -> the certificate step", m["wait_step"], m["wait_next_step"])
	}
}

// TestBenchTable: the table names every figure, one per line.
func TestBenchTable(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	if err := writeBenchTable(&b, benchResult{Clients: 5, SweepSeconds: 1, SweepFloorSeconds: 0.5, SweepOverFloor: 2, HandshakesPerSweep: 1}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"clients", "full sweep", "sweep floor", "handshakes per sweep", "wait's full sweep", "incremental poll",
		"wait-end latency", "bot RSS", "sim RSS", "sim CPU", "router"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestBenchPollReadsTheChangedShare: each timed poll reads about --changed of the
// fleet. Half the clients roam, so the steady site shows two in three of them
// away, and their returns are check-ins of clients shown offline: a window sized
// on the online share instead of the counted check-ins read 26% too many. 50,000
// clients at 60 s check in about 650 times a second: the rate is counted over
// the 2 s simulator window and the sweeps (about 1,700 check-ins, so it varies
// by about 2.5%), and a poll reads about 5,000 (1.4%); 15% is over 5 of those
// deviations together and still well short of the old formula's error.
func TestBenchPollReadsTheChangedShare(t *testing.T) {
	t.Parallel()
	const clients = 50_000
	var out bytes.Buffer
	cmd := &BenchCmd{
		Clients: clients, Heartbeat: time.Minute, Changed: 0.10, PollInterval: time.Second, Roaming: 50, PolicyFetch: 1,
		SkipRotation: true, SimWindow: 2 * time.Second, Repeat: 1, RouterUsers: 1, RouterDuration: 100 * time.Millisecond,
		Data: t.TempDir(), JSON: true, Timeout: 2 * time.Minute,
		simEnv: []string{"SEPMBOT_TEST_MAIN=1"},
	}
	g := &Globals{Ctx: context.Background(), Log: slog.New(slog.DiscardHandler), Out: &out}
	if err := cmd.Run(g); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	var r benchResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if want := 0.10 * clients; math.Abs(float64(r.IncrementalComputers)-want) > 0.15*want {
		t.Errorf("the poll read %d computers, want %.0f ± 15%%", r.IncrementalComputers, want)
	}
	t.Logf("the poll read %d computers", r.IncrementalComputers)
}
