package lincheck

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/arbor-db/arbor/client/wire"
)

// register is the model state of one path.
type register struct {
	Exists  bool
	Data    string
	Version int64
}

// TreeModel is the porcupine model of the tree as a register per path
// (inputs Input, outputs Output; ops on one path form one partition).
// Unknown outputs may take effect or not: porcupine places them anywhere
// after their call, and at the end of the history one that did not happen
// is indistinguishable from one that did nothing. Error codes other than
// NO_NODE, NODE_EXISTS and BAD_VERSION (SESSION_EXPIRED, BAD_REQUEST...)
// are taken to mean the operation had no effect.
var TreeModel = porcupine.Model{
	Partition: partitionByPath,
	Init:      func() any { return register{} },
	Step: func(state, input, output any) (bool, any) {
		return step(state.(register), input.(Input), output.(Output))
	},
	Equal: func(a, b any) bool { return a.(register) == b.(register) },
	Hash: func(s any) uint64 {
		r := s.(register)
		h := fnv.New64a()
		fmt.Fprintf(h, "%v|%d|%s", r.Exists, r.Version, r.Data)
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		return Op{Input: input.(Input), Output: output.(Output)}.describe()
	},
	DescribeState: func(s any) string {
		r := s.(register)
		if !r.Exists {
			return "absent"
		}
		return fmt.Sprintf("%q v%d", r.Data, r.Version)
	},
}

func (o Op) describe() string {
	in := o.Input
	var s string
	switch in.Kind {
	case KindCreate:
		s = fmt.Sprintf("create(%q)", in.Data)
	case KindSet:
		s = fmt.Sprintf("set(%q, v%d)", in.Data, in.Version)
	case KindCAS:
		s = fmt.Sprintf("cas(v%d → %q)", in.Version, in.Data)
	case KindDelete:
		s = fmt.Sprintf("delete(v%d)", in.Version)
	case KindGet:
		s = "get()"
	default:
		s = string(in.Kind)
	}
	out := o.Output
	switch {
	case out.Unknown:
		return s + " → ?"
	case out.Err != "":
		return s + " → " + string(out.Err)
	case in.Kind == KindGet:
		return fmt.Sprintf("%s → %q v%d @%d", s, out.Data, out.Version, out.Zxid)
	default:
		return fmt.Sprintf("%s → ok v%d @%d", s, out.Version, out.Zxid)
	}
}

func partitionByPath(ops []porcupine.Operation) [][]porcupine.Operation {
	byPath := map[string]int{}
	var parts [][]porcupine.Operation
	for _, o := range ops {
		p := o.Input.(Input).Path
		i, ok := byPath[p]
		if !ok {
			i = len(parts)
			byPath[p] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], o)
	}
	return parts
}

func versionMatches(want int64, r register) bool { return want == AnyVersion || want == r.Version }

// step is the sequential specification of one path.
func step(r register, in Input, out Output) (bool, any) {
	if !out.Unknown && out.Err != "" && out.Err != wire.CodeNoNode && out.Err != wire.CodeNodeExists && out.Err != wire.CodeBadVersion {
		return true, r // refused for a reason the model does not track: no effect
	}
	switch in.Kind {
	case KindCreate:
		if out.Unknown {
			if r.Exists {
				return true, r
			}
			return true, register{Exists: true, Data: in.Data}
		}
		if out.Err == wire.CodeNodeExists {
			return r.Exists, r
		}
		if out.Err != "" || r.Exists || out.Version != 0 {
			return false, r
		}
		return true, register{Exists: true, Data: in.Data}
	case KindSet, KindCAS:
		ok := r.Exists && versionMatches(in.Version, r)
		next := register{Exists: true, Data: in.Data, Version: r.Version + 1}
		switch {
		case out.Unknown:
			if ok {
				return true, next
			}
			return true, r
		case out.Err == wire.CodeNoNode:
			return !r.Exists, r
		case out.Err == wire.CodeBadVersion:
			return r.Exists && !ok, r
		case out.Err != "":
			return false, r
		}
		return ok && out.Version == next.Version, next
	case KindDelete:
		ok := r.Exists && versionMatches(in.Version, r)
		switch {
		case out.Unknown:
			if ok {
				return true, register{}
			}
			return true, r
		case out.Err == wire.CodeNoNode:
			return !r.Exists, r
		case out.Err == wire.CodeBadVersion:
			return r.Exists && !ok, r
		case out.Err != "":
			return false, r
		}
		return ok, register{}
	case KindGet:
		switch {
		case out.Unknown:
			return true, r
		case out.Err == wire.CodeNoNode:
			return !r.Exists, r
		case out.Err != "":
			return false, r
		}
		return r.Exists && r.Data == out.Data && r.Version == out.Version, r
	}
	return true, r
}

// LinearizableOps returns the operations of h that TreeModel checks:
// everything but `local` reads, closes, and any operation on a path where an
// ephemeral node was ever created.
func LinearizableOps(h []Op) []porcupine.Operation {
	ephemeral := map[string]bool{}
	for _, o := range h {
		if o.Input.Kind == KindCreate && o.Input.Ephemeral {
			ephemeral[o.Input.Path] = true
		}
	}
	var ops []porcupine.Operation
	for _, o := range h {
		if o.Input.Kind == KindClose || o.Input.Local || ephemeral[o.Input.Path] {
			continue
		}
		ops = append(ops, porcupine.Operation{
			ClientId: o.Client, Input: o.Input, Output: o.Output,
			Call: o.Call, Return: o.Return, Metadata: o.ID,
		})
	}
	return ops
}

// LinResult is the outcome of CheckLinearizable.
type LinResult struct {
	Result porcupine.CheckResult // porcupine.Ok, Illegal or Unknown (timed out)
	Info   porcupine.LinearizationInfo
	Ops    int // operations checked
}

// CheckLinearizable checks the linearizable part of h against TreeModel,
// giving up after timeout (Result Unknown).
func CheckLinearizable(h []Op, timeout time.Duration) LinResult {
	ops := LinearizableOps(h)
	res, info := porcupine.CheckOperationsVerbose(TreeModel, ops, timeout)
	return LinResult{Result: res, Info: info, Ops: len(ops)}
}

// VisualizationDirEnv names the environment variable that, when set, is the
// directory SaveVisualization writes into instead of its dir argument.
const VisualizationDirEnv = "ARBOR_LINCHECK_DIR"

// SaveVisualization writes porcupine's HTML view of res to
// DIR/name.html, where DIR is $ARBOR_LINCHECK_DIR if set, else dir (pass a
// directory that outlives the test, such as os.TempDir(); t.TempDir is
// removed when the test ends). It returns the file's path.
func SaveVisualization(res LinResult, dir, name string) (string, error) {
	if d := os.Getenv(VisualizationDirEnv); d != "" {
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("lincheck: visualization dir: %w", err)
	}
	path := filepath.Join(dir, name+".html")
	if err := porcupine.VisualizePath(TreeModel, res.Info, path); err != nil {
		return "", fmt.Errorf("lincheck: visualize: %w", err)
	}
	return path, nil
}
