package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// RunHelper runs a one-off helper container to its end and fails, with the end of its stderr,
// unless it exits 0. The helper is removed whatever happens.
func RunHelper(ctx context.Context, api Engine, o HelperOptions) error {
	h, err := CreateHelper(ctx, api, o)
	if err != nil {
		return err
	}
	defer h.Remove()
	wait := api.ContainerWait(ctx, h.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if err := h.Start(ctx); err != nil {
		return err
	}
	select {
	case res := <-wait.Result:
		if res.StatusCode != 0 {
			return &ExitError{Cmd: o.Cmd[0], Code: int(res.StatusCode), Stderr: h.stderr()}
		}
		return nil
	case err := <-wait.Error:
		return fmt.Errorf("waiting for %s: %w", o.Cmd[0], err)
	}
}

func (h *Helper) stderr() string {
	_, stderr := h.Output()
	return stderr
}

// Output is what a started helper wrote, once its command has ended: all of stdout up to 1 MiB
// and the end of stderr.
func (h *Helper) Output() (stdout, stderr string) {
	if h.out == nil {
		return "", ""
	}
	stdout, stderr = h.out.wait(10 * time.Second)
	return stdout, strings.TrimSpace(stderr)
}
