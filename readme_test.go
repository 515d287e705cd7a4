package main

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"sepmbot/config"
)

// TestREADMEListsEverySetting: the README's settings table names every flag of
// every command, every environment variable a flag reads, every secret variable
// and every key of a site in the config file.
func TestREADMEListsEverySetting(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	start := strings.Index(readme, "| setting (flag = file key) |")
	if start < 0 {
		t.Fatal("no settings table in the README")
	}
	table := readme[start:]
	table = table[:strings.Index(table, "\n\n")]
	var cli CLI
	k, err := kong.New(&cli, kong.Name("sepmbot"))
	if err != nil {
		t.Fatal(err)
	}
	_ = kong.Visit(k.Model.Node, func(n kong.Visitable, next kong.Next) error {
		f, ok := n.(*kong.Flag)
		if !ok || f.Name == "help" {
			return next(nil)
		}
		if !strings.Contains(table, "`--"+f.Name+"`") {
			t.Errorf("--%s is not in the README's settings table", f.Name)
		}
		for _, env := range f.Tag.Envs {
			if !strings.Contains(table, "`"+env+"`") && !strings.Contains(table, env) {
				t.Errorf("%s (--%s) is not in the README's settings table", env, f.Name)
			}
		}
		return next(nil)
	})
	for _, env := range config.SecretEnvs {
		if !strings.Contains(table, "`"+env+"`") {
			t.Errorf("secret %s is not in the README's settings table", env)
		}
	}
	st := reflect.TypeFor[config.Site]()
	for i := range st.NumField() {
		key, _, _ := strings.Cut(st.Field(i).Tag.Get("yaml"), ",")
		if key != "" && key != "-" && !strings.Contains(table, "`"+key+"`") {
			t.Errorf("site key %s is not in the README's settings table", key)
		}
	}
}
