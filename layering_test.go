package arbor_test

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The packages import only downwards (docs/architecture.md): this keeps it so.
func TestImportsPointDownwards(t *testing.T) {
	const mod = "github.com/arbor-db/arbor/"
	allowed := map[string][]string{
		"client/wire": {},
		"tree":        {},
		"session":     {},
		"watch":       {"tree"},
		"raftnode":    {},
		"client":      {"client/wire"},
		// arbortest runs whole members for users' tests: server and all
		// it stands on, and the client whose users it serves.
		"arbortest": {"server", "client", "client/wire", "raftnode", "tree", "session", "watch"},
	}
	for pkg, ok := range allowed {
		if _, err := os.Stat(pkg); errors.Is(err, fs.ErrNotExist) {
			continue // not built yet
		}
		out, err := exec.Command("go", "list", "-deps", "./"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			rel, ours := strings.CutPrefix(dep, mod)
			if !ours || rel == pkg || strings.HasPrefix(rel, pkg+"/") {
				continue
			}
			permitted := false
			for _, a := range ok {
				if rel == a {
					permitted = true
				}
			}
			if !permitted {
				t.Errorf("%s imports %s, which the layering forbids", pkg, rel)
			}
		}
	}
}
