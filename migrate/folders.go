package migrate

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/echo-backup/echo-backup/compose"
	"github.com/echo-backup/echo-backup/engine"
)

// PrepareFolders makes the project's bind-mounted data folders exist on the target host, as
// compose does for a short-syntax bind when it starts a service. Restore stages each folder
// beside the live one, through a helper that mounts its parent, and on a fresh host not even
// the project folder's path exists. A bind given as a legacy "src:dst" string makes the
// engine create a missing source itself; a started helper with nothing to do is enough.
func (t *Target) PrepareFolders(ctx context.Context) error {
	var binds []string
	for i, it := range t.Plan.Items {
		if it.Kind == "bind" && it.Backup && (it.Role == compose.RoleData || it.Role == compose.RoleDatabase) {
			binds = append(binds, fmt.Sprintf("%s:/echobackup/%d", it.Source, i))
		}
	}
	if len(binds) == 0 {
		return nil
	}
	labels := engine.Self().Labels()
	labels[engine.LabelEchoProject], labels[engine.LabelEchoRole] = t.Plan.Name, "migrate-folders"
	cfg := &container.Config{Image: t.Plan.Database.Image, Entrypoint: []string{}, Cmd: []string{"true"}, Labels: labels}
	res, err := t.API.ContainerCreate(context.WithoutCancel(ctx), client.ContainerCreateOptions{Config: cfg,
		HostConfig: &container.HostConfig{Binds: binds, NetworkMode: network.NetworkNone}})
	if err != nil {
		return fmt.Errorf("creating the data folders on context %q: %w", t.Context, err)
	}
	defer func() {
		_, _ = t.API.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true})
	}()
	wait := t.API.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := t.API.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("creating the data folders on context %q: %w", t.Context, err)
	}
	select {
	case <-wait.Result:
		return nil
	case err := <-wait.Error:
		return fmt.Errorf("creating the data folders on context %q: %w", t.Context, err)
	}
}
