package proc

import (
	"fmt"
	"os"
	"os/exec"
)

// Build builds the arbor command whose package directory is pkg (relative
// to the caller's working directory, as `go build` takes it) into out,
// with extra flags of `go build` (-race, -tags ...), its output on stderr.
// The test binaries that start members build them with it once.
func Build(out, pkg string, flags ...string) error {
	args := append([]string{"build", "-o", out}, flags...)
	build := exec.Command("go", append(args, pkg)...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building arbor: %w", err)
	}
	return nil
}
