package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocsLinksStayInRepository is acceptance 6 of the conversation issue: the README
// and docs/procedure.md are in the repository, every link in them resolves to a file
// in it, and none leaves it (no ../, no outside document named).
func TestDocsLinksStayInRepository(t *testing.T) {
	files := []string{"README.md", filepath.Join("docs", "procedure.md")}
	more, _ := filepath.Glob(filepath.Join("docs", "*.md"))
	files = append(files, more...)
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("%s is not in the repository: %v", f, err)
		}
		text := string(raw)
		if strings.Contains(text, "../shared") || strings.Contains(text, "PROCEDURE.md") {
			t.Errorf("%s names a document outside the repository", f)
		}
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.HasPrefix(target, "#") {
				continue
			}
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				t.Errorf("%s links outside the repository: %s", f, target)
				continue
			}
			path, _, _ := strings.Cut(target, "#")
			abs, err := filepath.Abs(filepath.Join(filepath.Dir(f), path))
			if err != nil || !strings.HasPrefix(abs, root+string(filepath.Separator)) {
				t.Errorf("%s: link %s leaves the repository", f, target)
				continue
			}
			if _, err := os.Stat(abs); err != nil {
				t.Errorf("%s: link %s points to nothing: %v", f, target, err)
			}
		}
	}
	if raw, _ := os.ReadFile("README.md"); !strings.Contains(string(raw), "](docs/procedure.md)") {
		t.Error("the README does not link docs/procedure.md")
	}
}
