package config

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
)

// Redactor remembers secret values and replaces them in text. It is safe for
// concurrent use.
type Redactor struct {
	mu   sync.RWMutex
	vals []string // longest first, so a secret containing another is replaced whole
}

// Redacted replaces a secret in text.
const Redacted = "[REDACTED]"

// Secrets is the process's redactor: every secret read by Secret is added to it,
// and the log handler consults it.
var Secrets = &Redactor{}

// Add registers a secret. Values shorter than 4 characters are not registered (they
// would redact ordinary words); such a secret is refused by Secret anyway.
func (r *Redactor) Add(vals ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range vals {
		if len(v) < 4 || slices.Contains(r.vals, v) {
			continue
		}
		r.vals = append(r.vals, v)
	}
	slices.SortFunc(r.vals, func(a, b string) int { return len(b) - len(a) })
}

// Redact returns s with every registered secret replaced by [REDACTED].
func (r *Redactor) Redact(s string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, v := range r.vals {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, Redacted)
		}
	}
	return s
}

// Contains reports whether s holds a registered secret.
func (r *Redactor) Contains(s string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, v := range r.vals {
		if strings.Contains(s, v) {
			return true
		}
	}
	return false
}

// Secret reads the secret named by the environment variable env, or from the file
// that env+"_FILE" names (or file, when not empty: a *-file flag). It returns "" and
// no error when none is configured. A value read is registered with Secrets. The
// error never holds the value.
func Secret(env, file string) (string, error) {
	if file == "" {
		file = os.Getenv(env + "_FILE")
	}
	var v string
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading the file for %s: %w", env, err)
		}
		v = strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("the file %s for %s is empty", file, env)
		}
	default:
		v = os.Getenv(env)
	}
	if v != "" && len(v) < 4 {
		return "", fmt.Errorf("%s is shorter than 4 characters: not a real secret", env)
	}
	Secrets.Add(v)
	return v, nil
}

// SecretEnvs are the environment variables sepmbot reads secrets from (each also
// as NAME_FILE). The chat adapters read theirs through Secret with these names.
var SecretEnvs = []string{
	"SEPMBOT_SEPM_PASSWORD",
	"SLACK_BOT_TOKEN",
	"SLACK_APP_TOKEN",
	"SLACK_SIGNING_SECRET",
	"DISCORD_BOT_TOKEN",
	"DISCORD_PUBLIC_KEY",
	"SEPMBOT_ADMIN_TOKEN", // admin.TokenEnv: /backup and /audit/{id}
}

// LoadSecretEnvs reads every secret sepmbot knows from the environment (so they are
// redacted from logs even before the component that uses them exists) and returns
// the names of those configured.
func LoadSecretEnvs() ([]string, error) {
	var set []string
	for _, env := range SecretEnvs {
		v, err := Secret(env, "")
		if err != nil {
			return set, err
		}
		if v != "" {
			set = append(set, env)
		}
	}
	return set, nil
}
