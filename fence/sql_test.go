package fence_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // pure Go SQLite, a test dependency only

	"github.com/arbor-db/arbor/fence"
)

// openAccounts opens a fresh SQLite database with one table of guarded
// rows: account 1 (balance 100, never written under a lock) and account 2.
func openAccounts(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(`CREATE TABLE accounts (
		id INTEGER PRIMARY KEY,
		owner TEXT NOT NULL DEFAULT '',
		balance INTEGER NOT NULL,
		fence_token INTEGER NOT NULL DEFAULT 0
	);
	INSERT INTO accounts (id, owner, balance) VALUES (1, 'ann', 100), (2, 'ann', 50)`)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func setBalance(id, balance int64, token uint64) (update, current fence.Stmt) {
	update = fence.Stmt{
		Query: "UPDATE accounts SET balance = ?, fence_token = ? WHERE id = ? AND fence_token <= ?",
		Args:  []any{balance, token, id, token},
	}
	current = fence.Stmt{Query: "SELECT fence_token FROM accounts WHERE id = ?", Args: []any{id}}
	return update, current
}

func balance(t *testing.T, db *sql.DB, id int64) (bal int64, token uint64) {
	t.Helper()
	if err := db.QueryRow("SELECT balance, fence_token FROM accounts WHERE id = ?", id).Scan(&bal, &token); err != nil {
		t.Fatal(err)
	}
	return bal, token
}

func TestExecGuardsARow(t *testing.T) {
	ctx := context.Background()
	db := openAccounts(t)
	steps := []struct {
		name        string
		id, balance int64
		token       uint64
		wantErr     error
		wantBalance int64
		wantToken   uint64
	}{
		{name: "first holder", id: 1, balance: 90, token: 5, wantBalance: 90, wantToken: 5},
		{name: "same holder again", id: 1, balance: 80, token: 5, wantBalance: 80, wantToken: 5},
		{name: "next holder", id: 1, balance: 70, token: 8, wantBalance: 70, wantToken: 8},
		{name: "previous holder", id: 1, balance: 0, token: 5, wantErr: fence.ErrStale, wantBalance: 70, wantToken: 8},
		{name: "zero token", id: 1, balance: 0, token: 0, wantErr: fence.ErrNoToken, wantBalance: 70, wantToken: 8},
		{name: "missing row", id: 3, balance: 1, token: 9, wantErr: fence.ErrNoRow},
	}
	for _, s := range steps {
		update, current := setBalance(s.id, s.balance, s.token)
		err := fence.Exec(ctx, db, s.token, update, current)
		if !errors.Is(err, s.wantErr) || (err == nil) != (s.wantErr == nil) {
			t.Fatalf("%s: Exec = %v, want %v", s.name, err, s.wantErr)
		}
		if s.wantErr == fence.ErrNoRow {
			continue
		}
		if bal, tok := balance(t, db, s.id); bal != s.wantBalance || tok != s.wantToken {
			t.Fatalf("%s: balance %d token %d, want %d and %d", s.name, bal, tok, s.wantBalance, s.wantToken)
		}
	}
}

func TestExecStaleErrorNamesBothTokens(t *testing.T) {
	ctx := context.Background()
	db := openAccounts(t)
	u, c := setBalance(1, 1, 12)
	if err := fence.Exec(ctx, db, 12, u, c); err != nil {
		t.Fatal(err)
	}
	u, c = setBalance(1, 2, 11)
	err := fence.Exec(ctx, db, 11, u, c)
	var se *fence.StaleError
	if !errors.As(err, &se) || se.Token != 11 || se.Highest != 12 {
		t.Fatalf("Exec = %v, want a StaleError of 11 after 12", err)
	}
}

// In a transaction, a refused write is rolled back with everything the
// transaction did before it.
func TestExecInTransaction(t *testing.T) {
	ctx := context.Background()
	db := openAccounts(t)
	u, c := setBalance(2, 50, 20)
	if err := fence.Exec(ctx, db, 20, u, c); err != nil {
		t.Fatal(err)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	u, c = setBalance(1, 0, 19)
	if err := fence.Exec(ctx, tx, 19, u, c); err != nil {
		t.Fatalf("account 1 has seen no token yet: %v", err)
	}
	u, c = setBalance(2, 150, 19)
	if err := fence.Exec(ctx, tx, 19, u, c); !errors.Is(err, fence.ErrStale) {
		t.Fatalf("Exec on account 2 = %v, want ErrStale", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if bal, tok := balance(t, db, 1); bal != 100 || tok != 0 {
		t.Fatalf("account 1 after rollback: balance %d token %d", bal, tok)
	}
}

func TestExecUpsert(t *testing.T) {
	ctx := context.Background()
	db := openAccounts(t)
	upsert := func(id, bal int64, tok uint64) error {
		return fence.Exec(ctx, db, tok, fence.Stmt{
			Query: `INSERT INTO accounts (id, balance, fence_token) VALUES (?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET balance = excluded.balance, fence_token = excluded.fence_token
				WHERE accounts.fence_token <= excluded.fence_token`,
			Args: []any{id, bal, tok},
		}, fence.Stmt{Query: "SELECT fence_token FROM accounts WHERE id = ?", Args: []any{id}})
	}
	if err := upsert(7, 1, 30); err != nil {
		t.Fatalf("insert: %v", err)
	}
	if err := upsert(7, 2, 31); err != nil {
		t.Fatalf("update: %v", err)
	}
	if err := upsert(7, 3, 30); !errors.Is(err, fence.ErrStale) {
		t.Fatalf("stale upsert = %v, want ErrStale", err)
	}
	if bal, tok := balance(t, db, 7); bal != 2 || tok != 31 {
		t.Fatalf("balance %d token %d, want 2 and 31", bal, tok)
	}
}

func TestExecRefusesMisuse(t *testing.T) {
	ctx := context.Background()
	db := openAccounts(t)
	current := fence.Stmt{Query: "SELECT fence_token FROM accounts WHERE id = ?", Args: []any{1}}
	tests := []struct {
		name    string
		token   uint64
		update  fence.Stmt
		current fence.Stmt
		want    string
	}{
		{
			name:  "token too large",
			token: 1 << 63, current: current,
			update: fence.Stmt{Query: "UPDATE accounts SET fence_token = ? WHERE id = 1", Args: []any{uint64(1 << 63)}},
			want:   "does not fit",
		},
		{name: "no update", token: 3, current: current, want: "needs both"},
		{
			name: "no current", token: 3,
			update: fence.Stmt{Query: "UPDATE accounts SET fence_token = 3 WHERE id = 1"},
			want:   "needs both",
		},
		{
			name: "several rows", token: 3, current: current,
			update: fence.Stmt{Query: "UPDATE accounts SET fence_token = ? WHERE owner = 'ann' AND fence_token <= ?", Args: []any{3, 3}},
			want:   "affected 2 rows",
		},
		{
			// The update's WHERE names another row than current reads.
			name: "update misses the row", token: 3, current: current,
			update: fence.Stmt{Query: "UPDATE accounts SET fence_token = ? WHERE id = 99 AND fence_token <= ?", Args: []any{3, 3}},
			want:   "does not match",
		},
		{
			name: "bad SQL", token: 3, current: current,
			update: fence.Stmt{Query: "UPDATE nosuchtable SET x = 1"},
			want:   "guarded update",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fence.Exec(ctx, db, tt.token, tt.update, tt.current)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Exec = %v, want an error saying %q", err, tt.want)
			}
			if errors.Is(err, fence.ErrStale) {
				t.Fatalf("misuse reported as a stale token: %v", err)
			}
		})
	}
}

func TestExecNullToken(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "null.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE r (id INTEGER PRIMARY KEY, fence_token INTEGER); INSERT INTO r (id) VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	err = fence.Exec(ctx, db, 4,
		fence.Stmt{Query: "UPDATE r SET fence_token = ? WHERE id = 1 AND fence_token <= ?", Args: []any{4, 4}},
		fence.Stmt{Query: "SELECT fence_token FROM r WHERE id = 1"})
	if err == nil || !strings.Contains(err.Error(), "NULL") {
		t.Fatalf("Exec on a NULL token = %v, want an error saying NULL", err)
	}
}
