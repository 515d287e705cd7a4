package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Site is one SEPM site of the config file. Its settings come only from the file;
// its password only from SEPMBOT_SEPM_PASSWORD_<NAME> (or the variable PasswordEnv
// names), a *_FILE variable, or PasswordFile.
type Site struct {
	Name         string   `yaml:"name"`
	URL          string   `yaml:"sepm-url"`
	User         string   `yaml:"sepm-user"`
	Domain       string   `yaml:"sepm-domain"`
	PasswordFile string   `yaml:"sepm-password-file"`
	PasswordEnv  string   `yaml:"sepm-password-env"`
	CA           string   `yaml:"sepm-ca"`
	Fingerprints []string `yaml:"sepm-fingerprint"`
	Servers      []string `yaml:"sepm-server"`
	Insecure     bool     `yaml:"sepm-insecure-skip-verify"`
	// ReplicationPartners are sites that replicate with this one: they share groups
	// and policies, so one rotation at a time runs across all of them.
	ReplicationPartners []string `yaml:"replication-partners"`
	// Roles of this site; empty lists fall back to the global --operators,
	// --approvers and --viewers.
	Operators []string `yaml:"operators"`
	Approvers []string `yaml:"approvers"`
	Viewers   []string `yaml:"viewers"`
	// Channels are where this site's rotations may be started (platform:channel).
	Channels []string `yaml:"channels"`

	Line int `yaml:"-"` // line in the file, for messages
}

var siteName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// PasswordVar is the environment variable the site's password is read from.
func (s Site) PasswordVar() string {
	if s.PasswordEnv != "" {
		return s.PasswordEnv
	}
	return "SEPMBOT_SEPM_PASSWORD_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(s.Name))
}

// CheckSites validates the sites of a file: unique valid names, a URL and a user
// each, partners that exist. It returns one error line per problem.
func CheckSites(sites []Site) []string {
	var probs []string
	seen := map[string]bool{}
	for _, s := range sites {
		at := fmt.Sprintf("site %q (line %d)", s.Name, s.Line)
		switch {
		case s.Name == "":
			probs = append(probs, fmt.Sprintf("site at line %d: no name", s.Line))
			continue
		case !siteName.MatchString(s.Name):
			probs = append(probs, at+": a name is letters, digits, '.', '_' or '-'")
		case seen[strings.ToLower(s.Name)]:
			probs = append(probs, at+": named twice")
		}
		seen[strings.ToLower(s.Name)] = true
		if s.URL == "" {
			probs = append(probs, at+": no sepm-url")
		}
		if s.User == "" {
			probs = append(probs, at+": no sepm-user")
		}
	}
	for _, s := range sites {
		for _, p := range s.ReplicationPartners {
			if !seen[strings.ToLower(p)] {
				probs = append(probs, fmt.Sprintf("site %q (line %d): replication partner %q is not a configured site", s.Name, s.Line, p))
			}
			if strings.EqualFold(p, s.Name) {
				probs = append(probs, fmt.Sprintf("site %q (line %d): names itself as a replication partner", s.Name, s.Line))
			}
		}
	}
	return probs
}

// LockGroups returns, for each site, every site it shares the one-rotation-at-a-time
// lock with (itself excluded): the transitive closure of replication-partners, taken
// both ways (if a replicates with b, b replicates with a).
func LockGroups(sites []Site) map[string][]string {
	adj := map[string][]string{}
	for _, s := range sites {
		adj[s.Name] = append(adj[s.Name], []string{}...)
		for _, p := range s.ReplicationPartners {
			for _, t := range sites {
				if strings.EqualFold(t.Name, p) && t.Name != s.Name {
					adj[s.Name] = append(adj[s.Name], t.Name)
					adj[t.Name] = append(adj[t.Name], s.Name)
				}
			}
		}
	}
	out := map[string][]string{}
	for _, s := range sites {
		seen := map[string]bool{s.Name: true}
		queue := []string{s.Name}
		for len(queue) > 0 {
			n := queue[0]
			queue = queue[1:]
			for _, m := range adj[n] {
				if !seen[m] {
					seen[m] = true
					queue = append(queue, m)
				}
			}
		}
		var group []string
		for n := range seen {
			if n != s.Name {
				group = append(group, n)
			}
		}
		slices.Sort(group)
		out[s.Name] = group
	}
	return out
}
