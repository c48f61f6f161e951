package restore

import (
	"errors"
	"fmt"
)

// undo is what to take back if a later step fails, in the order the steps succeeded: each
// step that changes something registers how to reverse it as soon as it has succeeded, and
// run reverses them newest first.
type undo struct {
	steps []undoStep
}

type undoStep struct {
	what string
	fn   func() error
}

func (u *undo) push(what string, fn func() error) {
	u.steps = append(u.steps, undoStep{what: what, fn: fn})
}

// run reverses every registered step, newest first, and keeps going past failures so that as
// much as possible is put back.
func (u *undo) run() error {
	var errs []error
	for i := len(u.steps) - 1; i >= 0; i-- {
		if err := u.steps[i].fn(); err != nil {
			errs = append(errs, fmt.Errorf("undoing %s: %w", u.steps[i].what, err))
		}
	}
	u.steps = nil
	return errors.Join(errs...)
}

// forget drops the undo steps once the whole restore has succeeded.
func (u *undo) forget() { u.steps = nil }
