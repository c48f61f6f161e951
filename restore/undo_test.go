package restore

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// Undo takes the steps back newest first, goes on past a failure, and keeps each failure's
// chain for errors.Is.
func TestUndoRunsNewestFirstAndKeepsTheChain(t *testing.T) {
	var u undo
	var order []string
	u.push("first", func() error { order = append(order, "first"); return nil })
	u.push("second", func() error { order = append(order, "second"); return fs.ErrPermission })
	u.push("third", func() error { order = append(order, "third"); return nil })
	err := u.run()
	if strings.Join(order, ",") != "third,second,first" {
		t.Errorf("order %v", order)
	}
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "undoing second: ") {
		t.Errorf("err = %v, want the failure wrapped with what was undone", err)
	}
	if u.run() != nil {
		t.Error("a second run undid again")
	}
}
