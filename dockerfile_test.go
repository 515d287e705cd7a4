package main

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerfile is the top-level Dockerfile split into instructions (continuations
// joined, comments dropped).
func dockerfile(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

// TestDockerfileStaticBuild runs the Dockerfile's build command outside Docker and
// checks that the binary is static (CGO off, no interpreter, no dynamic section),
// and that the image runs as a non-root user with a /data volume, a HEALTHCHECK
// through `sepmbot healthcheck` and a final stage carrying a CA bundle.
func TestDockerfileStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	ins := dockerfile(t)
	var build string
	var froms []string
	var user, volume, health string
	for _, in := range ins {
		kw, rest, _ := strings.Cut(in, " ")
		switch strings.ToUpper(kw) {
		case "FROM":
			froms = append(froms, rest)
		case "RUN":
			if strings.Contains(rest, "go build") {
				build = rest
			}
		case "USER":
			user = rest
		case "VOLUME":
			volume = rest
		case "HEALTHCHECK":
			health = rest
		}
	}
	if build == "" {
		t.Fatal("no RUN ... go build in the Dockerfile")
	}
	// The final stage: distroless static has the CA bundle (and no shell or libc).
	final := froms[len(froms)-1]
	if !regexp.MustCompile(`^gcr\.io/distroless/static(-debian\d+)?(:\S+)?$`).MatchString(final) {
		t.Errorf("final stage %q is not distroless static (which carries the CA bundle)", final)
	}
	if u, _, _ := strings.Cut(user, ":"); user == "" || u == "root" || u == "0" {
		t.Errorf("USER %q is not a non-root user", user)
	}
	if !strings.Contains(volume, "/data") {
		t.Errorf("VOLUME %q does not name /data", volume)
	}
	if !strings.Contains(health, `"healthcheck"`) || !strings.Contains(health, "sepmbot") {
		t.Errorf("HEALTHCHECK %q does not run sepmbot healthcheck", health)
	}

	// Run the build command as written, writing the binary to a temporary folder.
	bin := filepath.Join(t.TempDir(), "sepmbot")
	cmdline := strings.Replace(build, "-o /out/sepmbot", "-o "+bin, 1)
	if cmdline == build {
		t.Fatalf("the build command does not write -o /out/sepmbot: %s", build)
	}
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Env = append(os.Environ(), "VERSION=static-test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, out)
	}
	info, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, info)
	}
	if !strings.Contains(string(info), "CGO_ENABLED=0") {
		t.Errorf("not built with CGO_ENABLED=0:\n%s", info)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %s program header: it is dynamically linked", p.Type)
		}
	}
	if ef.Section(".dynamic") != nil || ef.Section(".interp") != nil {
		t.Error("the binary has a .dynamic or .interp section")
	}
	if libs, _ := ef.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary imports %v", libs)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "static-test") {
		t.Errorf("sepmbot version: %v %s", err, out)
	}
	if fi, err := os.Stat(bin); err == nil {
		t.Logf("static binary: %.1f MiB", float64(fi.Size())/(1<<20))
	}
}
