package raftnode

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// memberIDFile holds the id of a member that joined with FreshID.
const memberIDFile = "member-id"

// chooseID settles this member's raft id: the one kept in the data dir, or
// for a fresh joiner with FreshID a new one (kept there), or else the one
// its name gives (every member of a bootstrapped cluster computes its
// peers' ids from their names).
func (n *Node) chooseID(fresh bool) error {
	path := filepath.Join(n.cfg.DataDir, memberIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		id, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 64)
		if perr != nil || id == 0 {
			return fmt.Errorf("%w: %s holds no member id: %q", ErrStorage, path, b)
		}
		n.id = id
		return nil
	case !os.IsNotExist(err):
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if !fresh || !n.cfg.Join || !n.cfg.FreshID {
		return nil
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	n.id = MemberID(n.cfg.Name + "#" + hex.EncodeToString(nonce[:]))
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, []byte(strconv.FormatUint(n.id, 16)+"\n"), !n.cfg.NoSync); err != nil {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if !n.cfg.NoSync {
		if err := syncDir(n.cfg.DataDir); err != nil {
			return fmt.Errorf("%w: %w", ErrStorage, err)
		}
	}
	n.log.Info("joining with a member id of this incarnation", "id", n.id)
	return nil
}

func writeFileSync(path string, b []byte, sync bool) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
