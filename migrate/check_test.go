package migrate

import (
	"errors"
	"testing"
)

// Only the project's own database missing means a bare server: a missing role means a server
// another user set up, which holds data.
func TestDatabaseMissing(t *testing.T) {
	for msg, want := range map[string]bool{
		`psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: FATAL:  database "library" does not exist`: true,
		`psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: FATAL:  role "music" does not exist`:       false,
		`FATAL:  database "other" does not exist`:    false,
		`FATAL:  database "library2" does not exist`: false,
		`relation "x" does not exist`:                false,
		`container 1234 does not exist`:              false,
		`connection refused: is the server running?`: false,
	} {
		if got := databaseMissing(errors.New(msg), "library"); got != want {
			t.Errorf("%s: %v, want %v", msg, got, want)
		}
	}
}
