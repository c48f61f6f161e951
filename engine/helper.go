package engine

import (
	"context"

	"fmt"
	cerrdefs "github.com/containerd/errdefs"
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// Labels on what echo-backup itself creates. Never compose's project label: compose would then
// count our containers as its own, as orphans.
const (
	LabelEchoProject = "com.echobackup.project"
	LabelEchoRole    = "com.echobackup.helper"
	// The process that created a helper (see Owner): the next command of the project removes
	// the helpers whose owner on this host is gone, however it died.
	LabelOwnerHost  = "com.echobackup.owner.host"
	LabelOwnerPID   = "com.echobackup.owner.pid"
	LabelOwnerStart = "com.echobackup.owner.start"
)

// HelperOptions describe a short-lived container that gives the engine's side of a volume or
// folder to us as a tar stream. It uses an image already on the engine (the database's), so
// nothing is pulled.
type HelperOptions struct {
	Project string
	Image   string
	Mounts  []mount.Mount
	Cmd     []string // only for helpers that are started
	Env     []string
	// KeepEntrypoint runs the image's own entrypoint, for a throwaway PostgreSQL server.
	KeepEntrypoint bool
	// NetworkOf joins another container's network namespace, to reach its server on 127.0.0.1.
	NetworkOf string
	Purpose   string // for the label, e.g. "read", "write"
}

// Helper is a created container; Remove it when done.
type Helper struct {
	api Engine
	ID  string
	// watched helpers run their command under watchdog and are attached once started.
	watched bool
	attach  *client.HijackedResponse
	out     *helperOutput
}

// watchdog runs a started helper's command as a child of a shell that also reads the
// container's stdin. The engine closes that stdin (StdinOnce) when our attach connection
// closes, which the kernel does when this process dies, however it dies: the helper then
// ends its command and exits, and the engine removes it (AutoRemove). So a pg_dump blocked
// on its FIFO or a staging helper's sleep never outlives us by more than a few seconds.
// Background commands read /dev/null, hence the copy of stdin on fd 3.
const watchdog = `exec 3<&0
"$@" &
p=$!
{ cat <&3 >/dev/null; kill -TERM $p; sleep 5; kill -KILL $p; } 2>/dev/null &
wait $p`

// CreateHelper creates, but does not start, a helper container: CopyFromContainer and
// CopyToContainer work on created containers, and one that never runs cannot change anything.
// A helper with a command is meant to be started, and runs it under watchdog.
func CreateHelper(ctx context.Context, api Engine, o HelperOptions) (*Helper, error) {
	labels := Self().Labels()
	labels[LabelEchoProject], labels[LabelEchoRole] = o.Project, o.Purpose
	cfg := &container.Config{Image: o.Image, Env: o.Env, Labels: labels, Entrypoint: []string{}, Cmd: []string{"true"}}
	hostCfg := &container.HostConfig{Mounts: o.Mounts, NetworkMode: network.NetworkNone}
	if o.NetworkOf != "" {
		hostCfg.NetworkMode = container.NetworkMode("container:" + o.NetworkOf)
	}
	watched := len(o.Cmd) > 0
	if watched {
		cmd := o.Cmd
		if o.KeepEntrypoint {
			img, err := api.ImageInspect(ctx, o.Image)
			if err != nil {
				return nil, fmt.Errorf("reading the entrypoint of image %s: %w", o.Image, err)
			}
			if img.Config != nil {
				cmd = append(append([]string{}, img.Config.Entrypoint...), cmd...)
			}
		}
		cfg.Entrypoint, cfg.Cmd = []string{"sh", "-c", watchdog, "sh"}, cmd
		cfg.OpenStdin, cfg.StdinOnce = true, true
		cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr = true, true, true
		hostCfg.AutoRemove = true
	}
	// Not cut off by Ctrl-C: the engine would create the container anyway, and we would not
	// know its ID to remove it.
	res, err := api.ContainerCreate(context.WithoutCancel(ctx), client.ContainerCreateOptions{Config: cfg, HostConfig: hostCfg})
	if err != nil {
		return nil, fmt.Errorf("creating a helper container from image %s: %w", o.Image, err)
	}
	return &Helper{api: api, ID: res.ID, watched: watched}, nil
}

// Start runs the helper, for the ones that need a process to exec into. It attaches first:
// the attach connection is the helper's lifeline (see watchdog) and carries its output.
func (h *Helper) Start(ctx context.Context) error {
	if h.watched && h.attach == nil {
		res, err := h.api.ContainerAttach(ctx, h.ID, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
		if err != nil {
			return fmt.Errorf("attaching to a helper container: %w", err)
		}
		h.attach = &res.HijackedResponse
		h.out = newHelperOutput()
		go h.out.copy(res.Reader)
	}
	if _, err := h.api.ContainerStart(ctx, h.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting a helper container: %w", err)
	}
	return nil
}

// Read streams path inside the helper as a tar archive whose entries start with path's base name.
func (h *Helper) Read(ctx context.Context, path string) (io.ReadCloser, error) {
	res, err := h.api.CopyFromContainer(ctx, h.ID, client.CopyFromContainerOptions{SourcePath: path})
	if err != nil {
		return nil, fmt.Errorf("reading %s through a helper container: %w", path, err)
	}
	return res.Content, nil
}

// Write extracts a tar stream into dir inside the helper, keeping owners.
func (h *Helper) Write(ctx context.Context, dir string, tarStream io.Reader) error {
	return CopyTo(ctx, h.api, h.ID, dir, tarStream)
}

// CopyTo extracts a tar stream into dir inside a container, keeping the owners it records.
func CopyTo(ctx context.Context, api Engine, containerID, dir string, tarStream io.Reader) error {
	_, err := api.CopyToContainer(ctx, containerID, client.CopyToContainerOptions{
		DestinationPath: dir, Content: tarStream, CopyUIDGID: true, AllowOverwriteDirWithFile: true,
	})
	if err != nil {
		return fmt.Errorf("writing into %s in a container: %w", dir, err)
	}
	return nil
}

// Remove deletes the helper; it uses its own short context so it also runs after a cancel.
// A started helper may have removed itself already when its command ended.
func (h *Helper) Remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// RemoveVolumes: the official postgres image declares an anonymous volume for its data.
	_, err := h.api.ContainerRemove(ctx, h.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if h.attach != nil {
		h.attach.Close()
	}
	if h.watched && (cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err)) {
		return nil // gone, or the engine's auto-removal is under way
	}
	return err
}

// API is the engine the helper lives on.
func (h *Helper) API() Engine { return h.api }
