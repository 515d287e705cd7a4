package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

type fixed []string

func (f fixed) Redact(s string) string {
	for _, v := range f {
		s = strings.ReplaceAll(s, v, Redacted)
	}
	return s
}

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

// TestRedactsEverywhere: a registered secret is replaced in the message, string and
// error attributes, groups, WithAttrs attributes, Stringers and slices; keys naming
// a secret are replaced whatever their value.
func TestRedactsEverywhere(t *testing.T) {
	const secret = "s3cr3t-Value-42"
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		log, err := New(&buf, Options{Format: format, Level: slog.LevelDebug, Redact: fixed{secret}})
		if err != nil {
			t.Fatal(err)
		}
		log = log.With("ctx", "with "+secret)
		log.Debug("login as admin/"+secret, "err", errors.New("refused "+secret), "grp", slog.GroupValue(slog.String("inner", secret)),
			"str", stringer{secret}, "list", []string{"a", secret}, "any", map[string]string{"k": secret})
		log.WithGroup("g").Info("x", "password", "not-registered-but-named", "Authorization", "Bearer abc")
		out := buf.String()
		if strings.Contains(out, secret) || strings.Contains(out, "not-registered-but-named") || strings.Contains(out, "Bearer abc") {
			t.Errorf("%s: secret in log:\n%s", format, out)
		}
		if n := strings.Count(out, Redacted); n < 8 {
			t.Errorf("%s: %d redactions, want 8:\n%s", format, n, out)
		}
	}
}

// TestStepAdded: a line naming a rotation gets its current step, unless it names one.
func TestStepAdded(t *testing.T) {
	var buf bytes.Buffer
	steps := &Steps{}
	steps.Set("R1", "wait-disable")
	log, _ := New(&buf, Options{Format: "json", Steps: steps})
	log.Info("a", "rotation", "R1")
	log.Info("b", "rotation", "R1", "step", "cert-sepm-01")
	log.With("rotation", "R1").Info("c")
	log.Info("d", "rotation", "R2")
	steps.Set("R1", "")
	log.Info("e", "rotation", "R1")
	want := map[string]string{"a": "wait-disable", "b": "cert-sepm-01", "c": "wait-disable", "d": "", "e": ""}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		msg := m["msg"].(string)
		got, _ := m["step"].(string)
		if got != want[msg] {
			t.Errorf("%s: step %q, want %q", msg, got, want[msg])
		}
	}
}

func TestBadFormat(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, Options{Format: "xml"}); err == nil {
		t.Fatal("xml accepted")
	}
}
