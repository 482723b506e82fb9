package fence_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"

	"github.com/arbor-db/arbor/fence"
)

// A storage service guards each object with the token of the Arbor lock
// its writer holds. A writer whose lock expired while it was paused comes
// back with its old token and is refused.
func ExampleGuards() {
	var objects fence.Guards
	put := func(name string, token uint64, data string) error {
		return objects.Guard(name).Do(token, func() error {
			fmt.Printf("stored %s = %s (token %d)\n", name, data, token)
			return nil
		})
	}

	_ = put("report.pdf", 41, "draft")   // the first holder of the lock
	_ = put("report.pdf", 57, "final")   // the next holder, after the first's session expired
	err := put("report.pdf", 41, "late") // the first holder wakes up
	fmt.Println(errors.Is(err, fence.ErrStale))
	fmt.Println(err)
	// Output:
	// stored report.pdf = draft (token 41)
	// stored report.pdf = final (token 57)
	// true
	// fence: stale token 41 for "report.pdf": token 57 has been seen
}

// The row keeps the token of its last writer, and the UPDATE refuses a
// lower one in its WHERE clause: the database checks and writes in one
// statement. Exec says why nothing was written.
func ExampleExec() {
	ctx := context.Background()
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // every connection to :memory: is a database of its own
	if _, err := db.Exec(`CREATE TABLE accounts (
		id INTEGER PRIMARY KEY,
		balance INTEGER NOT NULL,
		fence_token INTEGER NOT NULL DEFAULT 0);
		INSERT INTO accounts (id, balance) VALUES (1, 100)`); err != nil {
		log.Fatal(err)
	}

	setBalance := func(id, balance int64, token uint64) error {
		return fence.Exec(ctx, db, token,
			fence.Stmt{
				Query: "UPDATE accounts SET balance = ?, fence_token = ? WHERE id = ? AND fence_token <= ?",
				Args:  []any{balance, token, id, token},
			},
			fence.Stmt{Query: "SELECT fence_token FROM accounts WHERE id = ?", Args: []any{id}})
	}
	fmt.Println(setBalance(1, 90, 57))
	fmt.Println(setBalance(1, 0, 41))
	fmt.Println(errors.Is(setBalance(2, 10, 57), fence.ErrNoRow))

	var balance int64
	if err := db.QueryRow("SELECT balance FROM accounts WHERE id = 1").Scan(&balance); err != nil {
		log.Fatal(err)
	}
	fmt.Println("balance:", balance)
	// Output:
	// <nil>
	// fence: stale token 41: token 57 has been seen
	// true
	// balance: 90
}
