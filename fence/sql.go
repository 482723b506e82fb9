package fence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
)

// ErrNoRow is returned by Exec when the row to write does not exist.
var ErrNoRow = errors.New("fence: no such row")

// DB is what Exec needs: *sql.DB, *sql.Tx and *sql.Conn have it.
type DB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	_ DB = (*sql.DB)(nil)
	_ DB = (*sql.Tx)(nil)
	_ DB = (*sql.Conn)(nil)
)

// Stmt is one SQL statement with its arguments, written in the driver's
// own placeholder syntax (? for SQLite and MySQL, $1 for PostgreSQL).
type Stmt struct {
	Query string
	Args  []any
}

// Exec runs update, a guarded write of one row, and says why it wrote
// nothing. The row keeps the token of its last writer in a column (say
// fence_token BIGINT NOT NULL DEFAULT 0), and update both sets it and
// refuses a lower one in its WHERE clause:
//
//	UPDATE accounts SET balance = ?, fence_token = ? WHERE id = ? AND fence_token <= ?
//
// with token among update.Args in both places. The database does the check
// and the write in one statement, so no writer can slip in between, even
// from another process. An upsert in the same spirit works too
// (INSERT ... ON CONFLICT (id) DO UPDATE SET ... WHERE accounts.fence_token
// <= excluded.fence_token, in SQLite and PostgreSQL).
//
// When update affects no row, Exec runs current, a query of that row's
// token (SELECT fence_token FROM accounts WHERE id = ?), and returns a
// *StaleError (errors.Is ErrStale) naming both tokens, or ErrNoRow when
// there is no such row. Run Exec on a *sql.Tx for current to read the
// same state update saw; on a *sql.DB a row inserted or deleted between
// the two statements can make the reason wrong (never the write).
//
// Exec returns an error too when update affects more than one row (it is
// for one row; roll the transaction back), and when it affects none though
// current finds a token update should have accepted: update's WHERE clause
// does not match current's row, or the driver counts changed rather than
// matched rows (MySQL does, unless the DSN sets clientFoundRows=true).
func Exec(ctx context.Context, db DB, token uint64, update, current Stmt) error {
	if token == 0 {
		return ErrNoToken
	}
	if token > math.MaxInt64 {
		// database/sql refuses such a uint64 argument, and a signed
		// column could not hold it.
		return fmt.Errorf("fence: token %d does not fit a signed 64-bit column", token)
	}
	if update.Query == "" || current.Query == "" {
		return errors.New("fence: Exec needs both an update and a query of the current token")
	}
	res, err := db.ExecContext(ctx, update.Query, update.Args...)
	if err != nil {
		return fmt.Errorf("fence: guarded update: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("fence: guarded update: rows affected: %w", err)
	}
	switch {
	case n == 1:
		return nil
	case n > 1:
		return fmt.Errorf("fence: guarded update affected %d rows, not one", n)
	}
	var have sql.Null[uint64]
	err = db.QueryRowContext(ctx, current.Query, current.Args...).Scan(&have)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNoRow
	case err != nil:
		return fmt.Errorf("fence: reading the current token: %w", err)
	case !have.Valid:
		return errors.New("fence: the row's token is NULL; declare the column NOT NULL DEFAULT 0")
	case have.V > token:
		return &StaleError{Token: token, Highest: have.V}
	}
	return fmt.Errorf("fence: guarded update affected no row, but the row's token %d does not exceed %d: "+
		"the update's WHERE clause does not match the row the current-token query reads, "+
		"or the driver counts changed rows (MySQL: set clientFoundRows=true)", have.V, token)
}
