package arbor_test

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// layer is one row of docs/architecture.md's package table.
type layer struct {
	pkg     string
	imports []string // as written: package names, or "none", or "all above"
}

// readLayers parses the package table: rows "| `pkg` | owns | imports |".
func readLayers(t *testing.T) []layer {
	t.Helper()
	f, err := os.Open("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([a-z0-9/]+)` \\|.*\\| ([^|]+) \\|$")
	name := regexp.MustCompile("`([a-z0-9/]+)`")
	var out []layer
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := row.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		l := layer{pkg: m[1]}
		switch cell := strings.TrimSpace(m[2]); cell {
		case "none", "all above":
			l.imports = []string{cell}
		default:
			for _, n := range name.FindAllStringSubmatch(cell, -1) {
				l.imports = append(l.imports, n[1])
			}
			if len(l.imports) == 0 {
				t.Fatalf("docs/architecture.md: row %s: imports cell %q names no package", l.pkg, cell)
			}
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		t.Fatal("docs/architecture.md has no package table")
	}
	return out
}

// The packages import only what docs/architecture.md's table allows
// (transitively: a package may use what the packages it may import may),
// every package of the module has a row, and every row a package.
func TestImportsFollowTheArchitectureTable(t *testing.T) {
	const mod = "github.com/arbor-db/arbor/"
	layers := readLayers(t)
	allowed := map[string]map[string]bool{}
	for i, l := range layers {
		set := map[string]bool{}
		for _, imp := range l.imports {
			switch imp {
			case "none":
			case "all above":
				for _, above := range layers[:i] {
					set[above.pkg] = true
				}
			default:
				set[imp] = true
			}
		}
		// What an allowed package may import is allowed too.
		for changed := true; changed; {
			changed = false
			for dep := range set {
				for d := range allowed[dep] {
					if !set[d] {
						set[d], changed = true, true
					}
				}
			}
		}
		allowed[l.pkg] = set
	}

	// Code and tests are checked; tests may also drive the system through
	// the client and the test harnesses (examples run members through
	// arbortest), which cannot make an import cycle.
	const format = `{{.ImportPath}} {{join .Imports " "}} | {{join .TestImports " "}} {{join .XTestImports " "}}`
	out, err := exec.Command("go", "list", "-f", format, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		pkg, ours := strings.CutPrefix(fields[0], mod)
		if !ours {
			continue // the root package: this test and the README's
		}
		seen[pkg] = true
		set, ok := allowed[pkg]
		if !ok {
			t.Errorf("package %s has no row in docs/architecture.md's package table", pkg)
			continue
		}
		inTests := false
		for _, dep := range fields[1:] {
			if dep == "|" {
				inTests = true
				continue
			}
			rel, ours := strings.CutPrefix(dep, mod)
			// A package's own subpackages (its test harness) are its own.
			if !ours || rel == pkg || strings.HasPrefix(rel, pkg+"/") {
				continue
			}
			if inTests && testMayImport(rel) {
				continue
			}
			if !set[rel] {
				where := "its code"
				if inTests {
					where = "its tests"
				}
				t.Errorf("%s imports %s in %s, which docs/architecture.md's table does not allow", pkg, rel, where)
			}
		}
	}
	for _, l := range layers {
		if !seen[l.pkg] {
			t.Errorf("docs/architecture.md names package %s, which does not exist", l.pkg)
		}
	}
	if !slices.ContainsFunc(layers, func(l layer) bool { return l.pkg == "server" }) {
		t.Error("the table has no row for server")
	}
}

// testMayImport reports whether any package's tests may import pkg: the
// client and its protocol types, arbortest, and the test harnesses.
func testMayImport(pkg string) bool {
	switch pkg {
	case "client", "client/wire", "arbortest":
		return true
	}
	last := pkg[strings.LastIndex(pkg, "/")+1:]
	return strings.HasSuffix(last, "test") || pkg == "server/servertest/lincheck"
}

// The arbor binary links no test code: not package testing (which also
// registers its flags in any program that links it), nor a harness that
// takes a *testing.T. arbortest/proc, the process cluster that client/bench
// starts for `arbor bench --start-cluster`, is the harness that ships.
func TestBinaryLinksNoTestingPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./cmd/arbor").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/arbor-db/arbor/arbortest/proc") {
		t.Error("cmd/arbor does not link arbortest/proc: is this test still about the binary's harness?")
	}
	for _, d := range deps {
		if d == "testing" || strings.HasPrefix(d, "testing/") {
			t.Errorf("cmd/arbor links %s; code that ships must not depend on it", d)
		}
	}
}
