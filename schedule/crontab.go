package schedule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ErrNoCrontab says the machine has no crontab command: cron is not installed.
var ErrNoCrontab = errors.New("no crontab command: install cron (Debian and Ubuntu: apt-get install cron) or use --systemd")

// ReadCrontab returns the user's crontab as `crontab -l` prints it; exists is false when the
// user has none.
func ReadCrontab(ctx context.Context) (text string, exists bool, err error) {
	if _, err := exec.LookPath("crontab"); err != nil {
		return "", false, ErrNoCrontab
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "crontab", "-l")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(stderr.String(), "no crontab for") {
			return "", false, nil
		}
		return "", false, fmt.Errorf("reading the crontab: crontab -l: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), true, nil
}

// WriteCrontab installs text as the user's crontab; an empty text removes the crontab, so
// removing the only entry leaves the user as they were before install.
func WriteCrontab(ctx context.Context, text string) error {
	args := []string{"-"}
	if text == "" {
		args = []string{"-r"}
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "crontab", args...)
	cmd.Stdin, cmd.Stderr = strings.NewReader(text), &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("writing the crontab: crontab %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
