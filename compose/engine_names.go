package compose

import (
	"context"
	"io"

	"github.com/echo-backup/echo-backup/engine"
)

// The engine's operations (exec, helper containers, owners, the reaper) are package engine;
// these are the names they had here, for the packages that still reach them through compose
// (restore, migrate, backup and files that other branches are rewriting now).
type (
	ExecOptions   = engine.ExecOptions
	ExitError     = engine.ExitError
	HelperOptions = engine.HelperOptions
	Helper        = engine.Helper
	Owner         = engine.Owner
	Reaped        = engine.Reaped
	HelperInfo    = engine.HelperInfo
)

const (
	LabelEchoProject = engine.LabelEchoProject
	LabelEchoRole    = engine.LabelEchoRole
)

func Exec(ctx context.Context, api Engine, containerID string, o ExecOptions) error {
	return engine.Exec(ctx, api, containerID, o)
}

func Output(ctx context.Context, api Engine, containerID string, o ExecOptions) (string, error) {
	return engine.Output(ctx, api, containerID, o)
}

func CreateHelper(ctx context.Context, api Engine, o HelperOptions) (*Helper, error) {
	return engine.CreateHelper(ctx, api, o)
}

func RunHelper(ctx context.Context, api Engine, o HelperOptions) error {
	return engine.RunHelper(ctx, api, o)
}

func CopyTo(ctx context.Context, api Engine, containerID, dir string, tarStream io.Reader) error {
	return engine.CopyTo(ctx, api, containerID, dir, tarStream)
}

func Self() Owner { return engine.Self() }

func ReapHelpers(ctx context.Context, api Engine, project string) (*Reaped, error) {
	return engine.ReapHelpers(ctx, api, project)
}
