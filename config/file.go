package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
	"go.yaml.in/yaml/v3"
)

// EnvConfig names the config file when --config is not given.
const EnvConfig = "SEPMBOT_CONFIG"

// File is a parsed config file: flag settings by flag name, and the sites.
type File struct {
	Path     string
	Settings map[string]yaml.Node // flag name -> value (scalar or sequence)
	Sites    []Site
}

// secretWords mark keys that would carry a secret in the file itself.
var secretWords = []string{"password", "token", "secret", "signing-key", "private-key"}

// isSecretKey reports whether key names a secret value (not a *-file path or a
// *-env variable name, which are allowed).
func isSecretKey(key string) bool {
	if strings.HasSuffix(key, "-file") || strings.HasSuffix(key, "-env") {
		return false
	}
	k := strings.ReplaceAll(strings.ToLower(key), "_", "-")
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// secretError says where a secret must come from instead of the file.
func secretError(where, key string) error {
	env := "SEPMBOT_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(key))
	return fmt.Errorf("%s: %q: secrets are not read from the config file; set %s or %s_FILE (or %s-file: PATH here)", where, key, env, env, key)
}

// Load reads and parses a config file. It checks the structure (unknown site keys,
// secrets in the file); flag names are checked against the command line model by
// the resolver's Validate.
func Load(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return Parse(path, raw)
}

// Parse parses the YAML of a config file; path is only used in messages.
func Parse(path string, raw []byte) (*File, error) {
	f := &File{Path: path, Settings: map[string]yaml.Node{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if doc.Kind == 0 { // empty file
		return f, nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s: want a mapping of settings at the top", path)
	}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		key := k.Value
		where := fmt.Sprintf("config file %s line %d", path, k.Line)
		if _, dup := f.Settings[key]; dup || (key == "sites" && f.Sites != nil) {
			return nil, fmt.Errorf("%s: %q given twice", where, key)
		}
		if isSecretKey(key) {
			return nil, secretError(where, key)
		}
		if key == "sites" {
			sites, err := parseSites(path, v)
			if err != nil {
				return nil, err
			}
			f.Sites = sites
			if f.Sites == nil {
				f.Sites = []Site{}
			}
			continue
		}
		switch v.Kind {
		case yaml.ScalarNode:
		case yaml.SequenceNode:
			for _, e := range v.Content {
				if e.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("%s: %q: want a list of plain values", where, key)
				}
			}
		default:
			return nil, fmt.Errorf("%s: %q: want a value or a list", where, key)
		}
		f.Settings[key] = *v
	}
	return f, nil
}

// parseSites decodes the sites list strictly: an unknown key is an error.
func parseSites(path string, n *yaml.Node) ([]Site, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("config file %s line %d: sites: want a list", path, n.Line)
	}
	var out []Site
	for _, item := range n.Content {
		if item.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("config file %s line %d: a site is a mapping (name, sepm-url, ...)", path, item.Line)
		}
		for i := 0; i+1 < len(item.Content); i += 2 {
			if k := item.Content[i]; isSecretKey(k.Value) {
				return nil, secretError(fmt.Sprintf("config file %s line %d", path, k.Line), k.Value)
			}
		}
		// Decode strictly through a re-encoding: yaml.Node.Decode has no KnownFields.
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		if err := enc.Encode(item); err != nil {
			return nil, fmt.Errorf("config file %s line %d: %w", path, item.Line, err)
		}
		dec := yaml.NewDecoder(&buf)
		dec.KnownFields(true)
		var s Site
		if err := dec.Decode(&s); err != nil {
			return nil, fmt.Errorf("config file %s: site at line %d: %w", path, item.Line, unknownField(err))
		}
		s.Line = item.Line
		out = append(out, s)
	}
	return out, nil
}

// unknownField shortens yaml's strict-decoding error.
func unknownField(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return err
}

// Resolver returns a kong resolver that supplies flag values from the file where
// neither the command line nor the flag's environment variable gave one.
func (f *File) Resolver() kong.Resolver { return &resolver{f: f} }

type resolver struct{ f *File }

// Validate refuses keys that name no flag of any command.
func (r *resolver) Validate(app *kong.Application) error {
	known := map[string]bool{}
	_ = kong.Visit(app.Node, func(n kong.Visitable, next kong.Next) error {
		if fl, ok := n.(*kong.Flag); ok {
			known[fl.Name] = true
		}
		return next(nil)
	})
	var bad []string
	for k := range r.f.Settings {
		if !known[k] || k == "config" || k == "help" {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	var lines []string
	for _, k := range bad {
		n := r.f.Settings[k]
		lines = append(lines, fmt.Sprintf("config file %s line %d: unknown setting %q", r.f.Path, n.Line, k))
	}
	return errors.New(strings.Join(lines, "\n"))
}

// Resolve gives the file's value for flag, unless an environment variable the flag
// reads is set (the environment wins over the file).
func (r *resolver) Resolve(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
	n, ok := r.f.Settings[flag.Name]
	if !ok {
		return nil, nil
	}
	for _, env := range flag.Tag.Envs {
		if _, set := os.LookupEnv(env); set {
			return nil, nil
		}
	}
	if n.Kind == yaml.SequenceNode {
		vals := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			vals = append(vals, e.Value)
		}
		return vals, nil
	}
	return n.Value, nil
}

// FindPath returns the config file named by --config/--config=PATH in args, or by
// SEPMBOT_CONFIG, or "" if none. It runs before the command line is parsed, so the
// file can supply flag values.
func FindPath(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		if a == "--config" && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
	}
	return os.Getenv(EnvConfig)
}
