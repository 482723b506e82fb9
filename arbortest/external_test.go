package arbortest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A project outside this module can use arbortest and the client as the
// docs say, and the client's examples, copied into it, compile and pass:
// this writes such a project in a temp dir (with a replace directive to
// this checkout, and this module's go.sum, so no network is needed) and
// runs go test there.
func TestUsableFromAnotherModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds another module: not with -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command here")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	goVersion := strings.TrimSpace(run(t, root, gobin, "list", "-m", "-f", "{{.GoVersion}}"))
	files := map[string]string{
		"go.mod": "module example.com/myapp\n\ngo " + goVersion + "\n\n" +
			"require github.com/arbor-db/arbor v0.0.0\n\n" +
			"replace github.com/arbor-db/arbor => " + root + "\n",
		"myapp.go": "// Package myapp stands for a user's project.\npackage myapp\n",
		"myapp_test.go": `package myapp_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/arbor-db/arbor/arbortest"
	"github.com/arbor-db/arbor/client"
)

func TestAgainstArbor(t *testing.T) {
	for _, srv := range []*arbortest.Server{arbortest.Start(t), arbortest.StartCluster(t, 3)} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, client.Config{Endpoints: srv.Endpoints()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if _, _, err := c.Create(ctx, "/jobs", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Get(ctx, "/nope"); !errors.Is(err, client.ErrNoNode) {
			t.Fatalf("Get /nope: %v", err)
		}
	}
}
`,
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	files["go.sum"] = string(sum)
	// The client's examples, as a user would copy them: only the package
	// clause changes.
	for _, name := range []string{"example_test.go", "example_session_test.go"} {
		b, err := os.ReadFile(filepath.Join(root, "client", name))
		if err != nil {
			t.Fatal(err)
		}
		src, ok := strings.CutPrefix(string(b), "package client_test\n")
		if !ok {
			t.Fatalf("client/%s does not start with package client_test", name)
		}
		files["client_"+name] = "package myapp_test\n" + src
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := run(t, dir, gobin, "test", "-count=1", "-v", ".")
	for _, want := range []string{"--- PASS: TestAgainstArbor", "--- PASS: Example ", "--- PASS: Example_sessionStates", "ok  \texample.com/myapp"} {
		if !strings.Contains(out, want) {
			t.Errorf("go test in the other module: no %q in\n%s", want, out)
		}
	}
}

// run runs a go command in dir offline: -mod=mod lets it complete go.mod
// from the module cache; GOPROXY=off makes any download an error.
func run(t *testing.T, dir, gobin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(gobin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}
