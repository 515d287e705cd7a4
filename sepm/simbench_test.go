package sepm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"sepmbot/sepm"
	"sepmbot/sepm/sim"
)

// Benchmarks against the simulator (sepm/sim), which serves full-size computer
// records (about 150 fields, 3.3 kB each) and, for verbose=true, reduced ones (17
// fields, 0.8 kB, about the record size it served before the fidelity issue).
// Figures and the decoder choice are in bench_test.go.

const simPassword = "bench-Pa55word-sim"

// startSim starts a site of n clients that check in every 300 s (SEPM's default),
// so the fleet barely changes during a run, and a logged-in client for it.
func startSim(b *testing.B, n int) (*sim.Site, *sepm.Client) {
	b.Helper()
	site, err := sim.Start(context.Background(), sim.Options{Clients: n, Heartbeat: 300 * time.Second,
		Password: simPassword, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = site.Close() })
	c, err := sepm.New(sepm.Config{URL: site.URL(), Username: site.User(), Password: simPassword,
		Fingerprints: []string{site.APIFingerprint()}, Timeout: 2 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Login(b.Context()); err != nil {
		b.Fatal(err)
	}
	return site, c
}

// BenchmarkSimSweep100k sweeps 100,000 simulated computers (pages of 1000) with
// the client, then measures the floor (SweepFloor: the same pages raw over the
// same connection plus json.Unmarshal into the slim struct) in the same iteration,
// and reports both: sweep-s and floor-s per sweep, their ratio x-floor (target
// <= 1.3), MB/sweep (reply bytes) and conns/sweep (target 1; each sweep starts
// cold). ns/op is sweep plus floor; B/op and allocs/op count the in-process
// simulator's encoding too (most of them), so read the client's allocations from
// BenchmarkComputersSweep100k.
func BenchmarkSimSweep100k(b *testing.B) {
	const n = 100_000
	_, c := startSim(b, n)
	for _, tc := range []struct {
		name string
		q    sepm.ComputerQuery
	}{{"reduced", sepm.ComputerQuery{}}, {"full", sepm.ComputerQuery{Full: true}}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := b.Context()
			var sweep, floor time.Duration
			var stats sepm.Stats
			b.ReportAllocs()
			for b.Loop() {
				// Each measurement starts without a kept-alive connection, so it pays
				// for its one handshake and conns/sweep shows how many it made.
				c.CloseIdleConnections()
				before := c.Stats()
				start := time.Now()
				all, err := c.Computers(ctx, tc.q)
				sweep += time.Since(start)
				stats = c.Stats().Sub(before)
				if err != nil {
					b.Fatal(err)
				}
				if len(all) != n {
					b.Fatalf("%d computers, want %d", len(all), n)
				}
				c.CloseIdleConnections()
				f, err := c.SweepFloor(ctx, tc.q)
				if err != nil {
					b.Fatal(err)
				}
				if f.Computers != n {
					b.Fatalf("floor decoded %d computers, want %d", f.Computers, n)
				}
				floor += f.Duration
			}
			iters := float64(b.N)
			b.ReportMetric(sweep.Seconds()/iters, "sweep-s")
			b.ReportMetric(floor.Seconds()/iters, "floor-s")
			b.ReportMetric(sweep.Seconds()/floor.Seconds(), "x-floor")
			b.ReportMetric(float64(stats.BodyBytes)/1e6, "MB/sweep")
			b.ReportMetric(float64(stats.Connections), "conns/sweep")
		})
	}
}

// BenchmarkDecodeComputerPage decodes one page of 1000 simulated computers, full
// and reduced, into the slim sepm.Page[sepm.Computer]: encoding/json's Unmarshal
// of a buffer, encoding/json's Decoder (what the client used before), and the
// client's page decoder.
func BenchmarkDecodeComputerPage(b *testing.B) {
	_, c := startSim(b, 1000)
	for _, rec := range []struct{ name, query string }{{"full", ""}, {"reduced", "&verbose=true"}} {
		var raw json.RawMessage
		if err := c.Do(b.Context(), "GET", "computers?pageSize=1000&pageIndex=1"+rec.query, nil, &raw); err != nil {
			b.Fatal(err)
		}
		for _, dec := range []struct {
			name string
			fn   func([]byte, any) error
		}{
			{"encoding-json-unmarshal", json.Unmarshal},
			{"encoding-json-decoder", func(d []byte, v any) error { return json.NewDecoder(bytes.NewReader(d)).Decode(v) }},
			{"page-decoder", sepm.UnmarshalPage},
		} {
			b.Run(rec.name+"/"+dec.name, func(b *testing.B) {
				b.SetBytes(int64(len(raw)))
				b.ReportAllocs()
				for b.Loop() {
					var p sepm.Page[sepm.Computer]
					if err := dec.fn(raw, &p); err != nil {
						b.Fatal(err)
					}
					if len(p.Content) != 1000 {
						b.Fatalf("%d records", len(p.Content))
					}
				}
			})
		}
	}
}
