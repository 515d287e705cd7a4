package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

type testCLI struct {
	Approvals int      `default:"2" env:"SEPMBOT_TEST_APPROVALS"`
	LogFormat string   `name:"log-format" default:"text" env:"SEPMBOT_TEST_LOG_FORMAT"`
	Operators []string `env:"SEPMBOT_TEST_OPERATORS"`
	SEPMURL   string   `name:"sepm-url" env:"SEPMBOT_TEST_SEPM_URL"`
	Insecure  bool     `name:"sepm-insecure-skip-verify"`
}

func parse(t *testing.T, yml string, args ...string) (testCLI, error) {
	t.Helper()
	f, err := Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	var cli testCLI
	k, err := kong.New(&cli, kong.Resolvers(f.Resolver()), kong.Exit(func(int) {}))
	if err != nil {
		return cli, err
	}
	_, err = k.Parse(args)
	return cli, err
}

// TestPrecedence: flag > env > file > default, for scalars and lists.
func TestPrecedence(t *testing.T) {
	yml := "approvals: 3\nlog-format: json\noperators: [console:a, console:b]\nsepm-url: https://file:8446\nsepm-insecure-skip-verify: true\n"
	cli, err := parse(t, yml)
	if err != nil {
		t.Fatal(err)
	}
	if cli.Approvals != 3 || cli.LogFormat != "json" || !slices.Equal(cli.Operators, []string{"console:a", "console:b"}) || cli.SEPMURL != "https://file:8446" || !cli.Insecure {
		t.Errorf("file over default: %+v", cli)
	}
	t.Setenv("SEPMBOT_TEST_APPROVALS", "4")
	t.Setenv("SEPMBOT_TEST_OPERATORS", "console:env")
	cli, err = parse(t, yml)
	if err != nil {
		t.Fatal(err)
	}
	if cli.Approvals != 4 || !slices.Equal(cli.Operators, []string{"console:env"}) || cli.LogFormat != "json" {
		t.Errorf("env over file: %+v", cli)
	}
	cli, err = parse(t, yml, "--approvals", "5", "--operators", "console:flag")
	if err != nil {
		t.Fatal(err)
	}
	if cli.Approvals != 5 || !slices.Equal(cli.Operators, []string{"console:flag"}) {
		t.Errorf("flag over env: %+v", cli)
	}
	cli, err = parse(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if cli.Approvals != 4 || cli.LogFormat != "text" {
		t.Errorf("no file: %+v", cli)
	}
}

// TestUnknownSettingRefused: a key naming no flag fails the parse with its line.
func TestUnknownSettingRefused(t *testing.T) {
	_, err := parse(t, "approvals: 2\napprovels: 3\n")
	if err == nil || !strings.Contains(err.Error(), `line 2: unknown setting "approvels"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestSecretsRefusedInFile: a password or token in the file is refused, at the top
// and in a site, with the variable to use; *-file paths are fine.
func TestSecretsRefusedInFile(t *testing.T) {
	for _, yml := range []string{
		"sepm-password: hunter22\n",
		"slack-bot-token: xoxb-1\n",
		"sites:\n  - name: a\n    sepm-url: https://a\n    sepm-password: hunter22\n",
		"discord_token: abc\n",
	} {
		_, err := Parse("c.yaml", []byte(yml))
		if err == nil || !strings.Contains(err.Error(), "secrets are not read from the config file") {
			t.Errorf("%q: err = %v", yml, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter22") {
			t.Errorf("the error repeats the secret: %v", err)
		}
	}
	if _, err := Parse("c.yaml", []byte("sepm-password-file: /run/secrets/pw\n")); err != nil {
		t.Errorf("a *-file path: %v", err)
	}
}

// TestSitesStrict: sites decode strictly; problems are listed one per line.
func TestSitesStrict(t *testing.T) {
	_, err := Parse("c.yaml", []byte("sites:\n  - name: a\n    sepm-ulr: https://a\n"))
	if err == nil || !strings.Contains(err.Error(), "sepm-ulr") {
		t.Fatalf("unknown site key: %v", err)
	}
	f, err := Parse("c.yaml", []byte(`
sites:
  - name: site-a
    sepm-url: https://a:8446
    sepm-user: bot
    replication-partners: [site-b]
    channels: [slack:C1]
  - name: site-b
    sepm-url: https://b:8446
    sepm-user: bot
  - name: site-c
    sepm-user: bot
    replication-partners: [site-x]
`))
	if err != nil {
		t.Fatal(err)
	}
	probs := CheckSites(f.Sites)
	want := []string{`site "site-c" (line 11): no sepm-url`, `site "site-c" (line 11): replication partner "site-x" is not a configured site`}
	if !slices.Equal(probs, want) {
		t.Errorf("problems:\n%s\nwant\n%s", strings.Join(probs, "\n"), strings.Join(want, "\n"))
	}
	g := LockGroups(f.Sites)
	if !slices.Equal(g["site-a"], []string{"site-b"}) || !slices.Equal(g["site-b"], []string{"site-a"}) || len(g["site-c"]) != 0 {
		t.Errorf("lock groups %v", g)
	}
	if f.Sites[0].PasswordVar() != "SEPMBOT_SEPM_PASSWORD_SITE_A" {
		t.Errorf("password var %s", f.Sites[0].PasswordVar())
	}
}

// TestLockGroupsTransitive: a-b and b-c put all three under one lock.
func TestLockGroupsTransitive(t *testing.T) {
	g := LockGroups([]Site{{Name: "a", ReplicationPartners: []string{"b"}}, {Name: "b"}, {Name: "c", ReplicationPartners: []string{"B"}}, {Name: "d"}})
	if !slices.Equal(g["a"], []string{"b", "c"}) || !slices.Equal(g["c"], []string{"a", "b"}) || len(g["d"]) != 0 {
		t.Errorf("%v", g)
	}
}

// TestSecretFromFileAndEnv: _FILE wins over nothing, values are registered for
// redaction, errors never carry the value.
func TestSecretFromFileAndEnv(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tok")
	if err := os.WriteFile(p, []byte("file-secret-1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SEPMBOT_TEST_TOKEN_FILE", p)
	v, err := Secret("SEPMBOT_TEST_TOKEN", "")
	if err != nil || v != "file-secret-1234" {
		t.Fatalf("%q %v", v, err)
	}
	if got := Secrets.Redact("x file-secret-1234 y"); got != "x [REDACTED] y" {
		t.Errorf("redact: %q", got)
	}
	t.Setenv("SEPMBOT_TEST_SHORT", "abc")
	if _, err := Secret("SEPMBOT_TEST_SHORT", ""); err == nil || strings.Contains(err.Error(), "abc") {
		t.Errorf("short secret: %v", err)
	}
}

func TestFindPath(t *testing.T) {
	t.Setenv(EnvConfig, "/env.yaml")
	for args, want := range map[string]string{
		"run --config /a.yaml":  "/a.yaml",
		"--config=/b.yaml demo": "/b.yaml",
		"run":                   "/env.yaml",
		"run -- --config /x":    "/env.yaml",
	} {
		if got := FindPath(strings.Fields(args)); got != want {
			t.Errorf("%s: %q, want %q", args, got, want)
		}
	}
}
