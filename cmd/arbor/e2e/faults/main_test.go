package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/arbor-db/arbor/arbortest/proc"
)

// Environment variables between the outer test process and the one it
// re-executes inside the namespace.
const (
	envInner  = "ARBOR_FAULTS_INNER"  // set inside the namespace
	envBinary = "ARBOR_FAULTS_BINARY" // the arbor binary the outer process built
)

var (
	// binary is the arbor binary, built once by the outer process.
	binary string
	// envProblem says why the fault tests cannot run here ("" when they can).
	envProblem string
)

func TestMain(m *testing.M) {
	if os.Getenv(envInner) != "" {
		os.Exit(inner(m))
	}
	envProblem = checkEnv()
	if envProblem != "" {
		// Run the tests anyway: each one skips (or fails under CI=true)
		// with the reason.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "arbor-faults-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := outer(dir)
	os.RemoveAll(dir)
	os.Exit(code)
}

// checkEnv reports what is missing to run the fault tests.
func checkEnv() string {
	if os.Geteuid() != 0 {
		return "fault tests need root (network namespaces, nftables, tmpfs mounts)"
	}
	for _, tool := range []string{"unshare", "ip", "nft", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("fault tests need %s on PATH (Debian: apt-get install nftables iproute2 util-linux)", tool)
		}
	}
	// A container may forbid namespaces even to root.
	if out, err := exec.Command("unshare", "--net", "--mount", "true").CombinedOutput(); err != nil {
		return fmt.Sprintf("unshare --net --mount fails here: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return ""
}

// requireEnv skips t when the fault tests cannot run here, or fails it
// under CI=true, where a silent skip would hide that nothing was proven.
func requireEnv(t *testing.T) {
	t.Helper()
	if envProblem == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", envProblem)
	}
	t.Skip(envProblem)
}

// outer builds arbor (or takes $ARBOR_FAULTS_ARBOR) and re-runs the tests
// inside a namespace.
func outer(dir string) int {
	bin := filepath.Join(dir, "arbor")
	if prebuilt := os.Getenv("ARBOR_FAULTS_ARBOR"); prebuilt != "" {
		// A binary built elsewhere (a release, or a tree other than this
		// checkout). Copy it where every member uid can run it.
		b, err := os.ReadFile(prebuilt)
		if err == nil {
			err = os.WriteFile(bin, b, 0o755)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "ARBOR_FAULTS_ARBOR:", err)
			return 1
		}
		return reexec(dir, bin)
	}
	var flags []string
	if os.Getenv("ARBOR_E2E_NORACE") == "" {
		flags = append(flags, "-race")
	}
	if tags := os.Getenv("ARBOR_FAULTS_TAGS"); tags != "" {
		// Negative controls: a build with a deliberate bug
		// (docs/reliability.md) that these tests must catch.
		flags = append(flags, "-tags", tags)
	}
	if err := proc.Build(bin, "../..", flags...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return reexec(dir, bin)
}

// reexec runs this test binary again, with the same arguments, inside a new
// network and mount namespace, and returns its exit code.
func reexec(dir, bin string) int {
	// Members run as other uids: they need to reach the binary.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cmd := exec.Command("unshare", append([]string{"--net", "--mount", "--propagation", "private", "--", self}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), envInner+"=1", envBinary+"="+bin)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// If go test kills this process on a timeout, the inner one goes too
	// (and its members with it: they have the same death signal).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "running the tests in a namespace:", err)
		return 1
	}
	return 0
}

// inner runs the tests inside the namespace: loopback up, an empty nftables
// table for partitions.
func inner(m *testing.M) int {
	binary = os.Getenv(envBinary)
	if err := setupNetwork(); err != nil {
		fmt.Fprintln(os.Stderr, "setting up the test namespace:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}
