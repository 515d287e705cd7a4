package commands

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestParseDuration checks accepted durations and their values.
func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0s":          0,
		"0d":          0,
		"45s":         45 * time.Second,
		"90s":         90 * time.Second,
		"10m":         10 * time.Minute,
		"1h30m":       90 * time.Minute,
		"90d":         90 * Day,
		"2d12h":       60 * time.Hour,
		"1d2h3m4s":    Day + 2*time.Hour + 3*time.Minute + 4*time.Second,
		"1H30M":       90 * time.Minute,
		"007m":        7 * time.Minute,
		"106751d":     106751 * Day, // just under the limit of time.Duration
		"9223372036s": 9223372036 * time.Second,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

// TestParseDurationErrors checks rejected durations and that each message says why.
func TestParseDurationErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "empty duration",
		"90":                       "no unit",
		"1h30":                     "no unit after 30",
		"-5m":                      "negative",
		"-0s":                      "negative",
		"+5m":                      "not a duration",
		"h":                        "not a duration",
		"5w":                       `unknown unit "w"`,
		"5ms":                      `unknown unit "ms"`,
		"5µs":                      "unknown unit",
		"1.5h":                     "fraction",
		"1,5h":                     "fraction",
		"30m1h":                    "largest first",
		"1h1h":                     "largest first",
		"106752d":                  "too long",
		"9223372037s":              "too long",
		"106751d23h59m59s":         "too long",
		"99999999999999999999999s": "too long",
		"5 m":                      "unknown unit",
	} {
		got, err := ParseDuration(in)
		if err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
			continue
		}
		if !strings.Contains(err.Error(), want) || strings.ContainsAny(err.Error(), "\n\r") {
			t.Errorf("ParseDuration(%q) error %q, want one line containing %q", in, err, want)
		}
	}
}

// TestFormatDuration checks the compact format and that it reads back.
func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                  "0s",
		45 * time.Second:                   "45s",
		90 * time.Second:                   "1m30s",
		90 * time.Minute:                   "1h30m",
		90 * Day:                           "90d",
		60 * time.Hour:                     "2d12h",
		Day + time.Second:                  "1d1s",
		-90 * time.Minute:                  "-1h30m",
		time.Minute + 500*time.Millisecond: "1m0.5s",
		250 * time.Millisecond:             "0.25s",
		time.Nanosecond:                    "0.000000001s",
		math.MaxInt64:                      "106751d23h47m16.854775807s",
		math.MinInt64:                      "-106751d23h47m16.854775808s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
	for _, d := range []time.Duration{0, time.Second, 59 * time.Second, time.Hour + time.Second, 90 * Day, 106751*Day + 23*time.Hour + 47*time.Minute + 16*time.Second} {
		back, err := ParseDuration(FormatDuration(d))
		if err != nil || back != d {
			t.Errorf("ParseDuration(FormatDuration(%v) = %q) = %v, %v", d, FormatDuration(d), back, err)
		}
	}
}

// FuzzDurationRoundTrip checks that ParseDuration never panics, never returns a negative
// value, and that what it accepts formats and reads back to the same value.
func FuzzDurationRoundTrip(f *testing.F) {
	for _, s := range []string{"90d", "1h30m", "45s", "2d12h", "", "-1s", "5ms", "99999999999d", "1.5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") || err.Error() == "" {
				t.Fatalf("ParseDuration(%q) error %q, want one non-empty line", s, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		}
		back, err := ParseDuration(FormatDuration(d))
		if err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v; FormatDuration = %q reads back as %v, %v", s, d, FormatDuration(d), back, err)
		}
	})
}
