package compose

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/client"
)

// PauseApps freezes the running containers of the app services, so the files and the database
// are saved as one consistent pair; resume unfreezes them and must always be called.
func PauseApps(ctx context.Context, api Engine, plan *Plan) (resume func() error, err error) {
	var paused []Container
	resume = func() error {
		var errs []error
		for _, c := range paused {
			// A fresh context: the user's Ctrl-C must not leave the app frozen.
			if _, err := api.ContainerUnpause(context.Background(), c.ID, client.ContainerUnpauseOptions{}); err != nil {
				errs = append(errs, fmt.Errorf("unpausing %s: %w", c.Name, err))
			}
		}
		return errors.Join(errs...)
	}
	for _, s := range plan.Services {
		if s.Role != RoleApp {
			continue
		}
		for _, c := range s.Containers {
			if c.State != "running" {
				continue
			}
			if _, err := api.ContainerPause(ctx, c.ID, client.ContainerPauseOptions{}); err != nil {
				return resume, fmt.Errorf("pausing %s: %w", c.Name, err)
			}
			paused = append(paused, c)
		}
	}
	return resume, nil
}
