package tree

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/script files with the actual output")

// TestScripts runs the scripts in testdata/script. Each block is a command,
// a "----" line, and the expected output up to a blank line. Mutations run at
// an increasing zxid n with time n*1000. Commands:
//
//	create PATH [data=S] [owner=N] [seq] [container] [ttl=N] [sys]
//	set PATH [data=S] [v=N] [sys]
//	delete PATH [v=N] [rec] [sys]
//	check PATH [v=N]
//	multi OP ; OP ; ...          (each OP as above)
//	get PATH | children PATH | ephemerals OWNER | close OWNER
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/script/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

func runScript(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tr := New()
	zxid := uint64(0)
	var out strings.Builder
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		cmd := lines[i]
		if cmd == "" || strings.HasPrefix(cmd, "#") {
			out.WriteString(cmd + "\n")
			continue
		}
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s:%d: command without ----", file, i+1)
		}
		var want []string
		j := i + 2
		for ; j < len(lines) && lines[j] != ""; j++ {
			want = append(want, lines[j])
		}
		i = j - 1
		got := runCommand(t, tr, &zxid, cmd)
		if !*update && strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, i+1, cmd, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		fmt.Fprintf(&out, "%s\n----\n%s\n", cmd, strings.Join(got, "\n"))
	}
	if *update {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func parseOp(t *testing.T, fields []string) Op {
	if len(fields) < 2 {
		t.Fatalf("op %q needs a path", fields)
	}
	op := Op{Path: fields[1], Version: -1}
	switch fields[0] {
	case "create":
		op.Kind = OpCreate
	case "set":
		op.Kind = OpSet
	case "delete":
		op.Kind = OpDelete
	case "check":
		op.Kind = OpCheck
	default:
		t.Fatalf("unknown op %q", fields[0])
	}
	for _, f := range fields[2:] {
		key, val, _ := strings.Cut(f, "=")
		n, _ := strconv.ParseInt(val, 10, 64)
		switch key {
		case "data":
			op.Data = []byte(val)
		case "owner":
			op.Owner = uint64(n)
		case "v":
			op.Version = n
		case "ttl":
			op.TTLMs = n
		case "seq":
			op.Sequential = true
		case "container":
			op.Container = true
		case "rec":
			op.Recursive = true
		case "sys":
			op.System = true
		default:
			t.Fatalf("unknown argument %q", f)
		}
	}
	return op
}

func fmtStat(s Stat) string {
	return fmt.Sprintf("czxid=%d mzxid=%d pzxid=%d ctime=%d mtime=%d version=%d cversion=%d len=%d children=%d owner=%d",
		s.Czxid, s.Mzxid, s.Pzxid, s.Ctime, s.Mtime, s.Version, s.Cversion, s.DataLength, s.NumChildren, s.EphemeralOwner)
}

func fmtEvents(evs []Event) []string {
	names := map[EventType]string{EventCreated: "created", EventDeleted: "deleted", EventDataChanged: "data", EventChildrenChanged: "children"}
	var out []string
	for _, e := range evs {
		s := fmt.Sprintf("event %s %s zxid=%d", names[e.Type], e.Path, e.Zxid)
		if e.Type == EventCreated || e.Type == EventDataChanged {
			s += fmt.Sprintf(" data=%q", e.Data)
		}
		out = append(out, s)
	}
	return out
}

func fmtResult(r Result) string {
	if r == (Result{}) {
		return "ok"
	}
	if r.Path != "" {
		return "ok " + r.Path + " " + fmtStat(r.Stat)
	}
	return "ok " + fmtStat(r.Stat)
}

func runCommand(t *testing.T, tr *Tree, zxid *uint64, cmd string) []string {
	fields := strings.Fields(cmd)
	switch fields[0] {
	case "get":
		data, st, err := tr.Get(fields[1])
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		return []string{fmt.Sprintf("%q %s", data, fmtStat(st))}
	case "children":
		names, st, err := tr.Children(fields[1])
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		return []string{fmt.Sprintf("%v %s", names, fmtStat(st))}
	case "ephemerals":
		owner, _ := strconv.ParseUint(fields[1], 10, 64)
		return []string{fmt.Sprint(tr.Ephemerals(owner))}
	case "close":
		owner, _ := strconv.ParseUint(fields[1], 10, 64)
		*zxid++
		return append([]string{"ok"}, fmtEvents(tr.DeleteEphemerals(*zxid, int64(*zxid)*1000, owner))...)
	case "multi":
		var ops []Op
		for _, part := range strings.Split(strings.TrimPrefix(cmd, "multi"), ";") {
			ops = append(ops, parseOp(t, strings.Fields(part)))
		}
		*zxid++
		res, evs, err := tr.Multi(*zxid, int64(*zxid)*1000, ops)
		if err != nil {
			var oe *OpError
			errors.As(err, &oe)
			return []string{fmt.Sprintf("error at %d: %v", oe.Index, err)}
		}
		var out []string
		for _, r := range res {
			out = append(out, fmtResult(r))
		}
		return append(out, fmtEvents(evs)...)
	default:
		op := parseOp(t, fields)
		*zxid++
		r, evs, err := tr.Apply(*zxid, int64(*zxid)*1000, op)
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		return append([]string{fmtResult(r)}, fmtEvents(evs)...)
	}
}
