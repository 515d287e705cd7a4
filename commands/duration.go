package commands

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Day is the "d" unit of ParseDuration and FormatDuration: 24 hours.
const Day = 24 * time.Hour

// durationUnits are the units ParseDuration accepts, largest first.
var durationUnits = []struct {
	name string
	d    time.Duration
}{{"d", Day}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}}

// ParseDuration reads a duration made of whole numbers with the units d (24 h), h, m
// and s, largest unit first and each at most once: "90d", "2d12h", "1h30m", "45s",
// "0s". Units are case-insensitive. It rejects the empty string, signs, fractions,
// missing or unknown units (so "90" and "5ms" are errors) and values that overflow
// time.Duration (about 292 years). Errors are one line and quote the input.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration; use a number and a unit, such as 90d, 1h30m or 45s")
	}
	in := strings.ToLower(s)
	if in[0] == '-' {
		return 0, fmt.Errorf("%s is negative; durations must be zero or more", quote(s))
	}
	var total time.Duration
	next := 0 // index into durationUnits of the largest unit still allowed
	for i := 0; i < len(in); {
		j := i
		for j < len(in) && in[j] >= '0' && in[j] <= '9' {
			j++
		}
		if j == i {
			return 0, fmt.Errorf("%s is not a duration; use whole numbers with the units d, h, m, s, such as 90d or 1h30m", quote(s))
		}
		k := j
		for k < len(in) && (in[k] < '0' || in[k] > '9') {
			k++
		}
		num, unit := in[i:j], in[j:k]
		if strings.HasPrefix(unit, ".") || strings.HasPrefix(unit, ",") {
			return 0, fmt.Errorf("%s has a fraction; use whole numbers of smaller units, such as 1h30m for 1.5h", quote(s))
		}
		if unit == "" {
			return 0, fmt.Errorf("%s has no unit after %s; use d, h, m or s, such as %sd", quote(s), num, num)
		}
		u := -1
		for x, du := range durationUnits {
			if du.name == unit {
				u = x
			}
		}
		if u < 0 {
			return 0, fmt.Errorf("%s has the unknown unit %s; use d, h, m or s, such as 90d or 1h30m", quote(s), quote(unit))
		}
		if u < next {
			return 0, fmt.Errorf("%s is not a duration: give each unit once, largest first (d, h, m, s), such as 2d12h", quote(s))
		}
		next = u + 1
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > int64(math.MaxInt64/durationUnits[u].d) {
			return 0, fmt.Errorf("%s is too long a duration", quote(s))
		}
		part := time.Duration(n) * durationUnits[u].d
		if total > math.MaxInt64-part {
			return 0, fmt.Errorf("%s is too long a duration", quote(s))
		}
		total += part
		i = k
	}
	return total, nil
}

// FormatDuration writes d compactly with the units of ParseDuration, largest first and
// zero parts left out: "90d", "2d12h", "1h30m", "45s", "0s". Whole-second durations
// read back through ParseDuration unchanged. A sub-second remainder is written as a
// decimal fraction of seconds ("1m0.5s", "0.25s"), which ParseDuration does not accept;
// a negative d gets a leading "-".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	u := uint64(d)
	if d < 0 {
		b.WriteByte('-')
		u = -u // two's complement: correct for math.MinInt64 too
	}
	for _, du := range durationUnits[:3] {
		if n := u / uint64(du.d); n > 0 {
			fmt.Fprintf(&b, "%d%s", n, du.name)
			u -= n * uint64(du.d)
		}
	}
	if u > 0 {
		sec, frac := u/uint64(time.Second), u%uint64(time.Second)
		if frac == 0 {
			fmt.Fprintf(&b, "%ds", sec)
		} else {
			f := strings.TrimRight(fmt.Sprintf("%09d", frac), "0")
			fmt.Fprintf(&b, "%d.%ss", sec, f)
		}
	}
	return b.String()
}
