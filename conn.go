package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"

	"sepmbot/admin"
	"sepmbot/config"
	"sepmbot/logs"
	"sepmbot/rotation"
	"sepmbot/sepm"
)

// Globals are handed to every subcommand.
type Globals struct {
	Ctx context.Context
	Log *slog.Logger
	Out io.Writer
	In  io.Reader
	// File is the config file (nil when none); Steps feeds the log handler.
	File  *config.File
	Steps *logs.Steps
	// LogLevel and LogFormat are --log-level and --log-format; LogLevelSet says that
	// the level was asked for (flag or env), so the demo keeps it instead of its own
	// warn-only default.
	// Metrics, when set, is the registry the bot reports to (startSites makes one
	// otherwise); the chat adapters built before it count their API calls and 429s
	// there.
	Metrics *admin.Metrics

	LogLevel    slog.Level
	LogLevelSet bool
	LogFormat   string
}

// SEPMFlags are the connection settings every command that talks to SEPM takes.
type SEPMFlags struct {
	SEPMURL          string   `name:"sepm-url" help:"SEPM base URL, e.g. https://sepm1:8446." env:"SEPMBOT_SEPM_URL"`
	SEPMUser         string   `name:"sepm-user" help:"SEPM administrator user." env:"SEPMBOT_SEPM_USER"`
	SEPMDomain       string   `name:"sepm-domain" help:"SEPM domain (default empty)." env:"SEPMBOT_SEPM_DOMAIN"`
	SEPMPasswordFile string   `name:"sepm-password-file" help:"File holding the SEPM password (or set SEPMBOT_SEPM_PASSWORD)." env:"SEPMBOT_SEPM_PASSWORD_FILE" type:"path"`
	SEPMCA           string   `name:"sepm-ca" help:"PEM CA bundle to trust for the SEPM API." env:"SEPMBOT_SEPM_CA" type:"path"`
	SEPMFingerprint  []string `name:"sepm-fingerprint" help:"Pinned SHA-256 of the SEPM certificate (hex, colons optional); repeatable." env:"SEPMBOT_SEPM_FINGERPRINT"`
	SEPMServer       []string `name:"sepm-server" help:"A management server of the site and its client-port address, NAME=HOST:PORT; repeatable." env:"SEPMBOT_SEPM_SERVER"`
	SEPMInsecure     bool     `name:"sepm-insecure-skip-verify" help:"INSECURE: do not verify the SEPM API certificate at all."`

	// passwordEnv replaces SEPMBOT_SEPM_PASSWORD for a site of the config file;
	// passwordAlt is tried first when set (a single site's own variable).
	passwordEnv, passwordAlt string
}

// password reads the SEPM password from the file, or the environment variable (or
// the file its _FILE variable names). The value is registered for redaction.
func (f SEPMFlags) password() (string, error) {
	env := f.passwordEnv
	if env == "" {
		env = "SEPMBOT_SEPM_PASSWORD"
	}
	if f.SEPMPasswordFile != "" {
		p, err := config.Secret(env, f.SEPMPasswordFile)
		if err != nil {
			return "", fmt.Errorf("reading --sepm-password-file: %w", err)
		}
		return p, nil
	}
	for _, e := range []string{f.passwordAlt, env} {
		if e == "" {
			continue
		}
		p, err := config.Secret(e, "")
		if err != nil {
			return "", err
		}
		if p != "" {
			return p, nil
		}
	}
	if env != "SEPMBOT_SEPM_PASSWORD" {
		return "", fmt.Errorf("no SEPM password: set %s (or %s_FILE) or give sepm-password-file", env, env)
	}
	return "", errors.New("no SEPM password: give --sepm-password-file or set SEPMBOT_SEPM_PASSWORD")
}

// client builds the SEPM client from the flags.
func (f SEPMFlags) client(log *slog.Logger) (*sepm.Client, error) {
	cfg, err := f.clientConfig(log)
	if err != nil {
		return nil, err
	}
	c, err := sepm.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("SEPM client: %w", err)
	}
	return c, nil
}

// clientConfig checks the flags and reads the password.
func (f SEPMFlags) clientConfig(log *slog.Logger) (sepm.Config, error) {
	if f.SEPMURL == "" {
		return sepm.Config{}, errors.New("--sepm-url (SEPMBOT_SEPM_URL) is required")
	}
	if f.SEPMUser == "" {
		return sepm.Config{}, errors.New("--sepm-user (SEPMBOT_SEPM_USER) is required")
	}
	pw, err := f.password()
	if err != nil {
		return sepm.Config{}, err
	}
	if f.SEPMCA == "" && len(f.SEPMFingerprint) == 0 && !f.SEPMInsecure {
		log.Warn("no --sepm-ca or --sepm-fingerprint: trusting the system roots for the SEPM API")
	}
	return sepm.Config{
		URL: f.SEPMURL, Username: f.SEPMUser, Password: pw, Domain: f.SEPMDomain,
		CAFile: f.SEPMCA, Fingerprints: f.SEPMFingerprint, InsecureSkipVerify: f.SEPMInsecure,
		Logger: log,
	}, nil
}

// apiAddr is host:port of the API, where the bot also verifies certificates.
func (f SEPMFlags) apiAddr() (string, error) {
	u, err := url.Parse(f.SEPMURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("--sepm-url %q is not a URL like https://sepm1:8446", f.SEPMURL)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "8446"), nil
	}
	return u.Host, nil
}

// servers parses --sepm-server NAME=HOST:PORT entries.
func (f SEPMFlags) servers() ([]rotation.ServerRef, error) {
	var out []rotation.ServerRef
	seen := map[string]bool{}
	for _, s := range f.SEPMServer {
		name, addr, ok := strings.Cut(s, "=")
		name, addr = strings.TrimSpace(name), strings.TrimSpace(addr)
		if !ok || name == "" || addr == "" {
			return nil, fmt.Errorf("--sepm-server %q: want NAME=HOST:PORT", s)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(addr, "443")
		}
		if seen[name] {
			return nil, fmt.Errorf("--sepm-server names %s twice", name)
		}
		seen[name] = true
		out = append(out, rotation.ServerRef{Name: name, ClientAddr: addr})
	}
	return out, nil
}
