package guard

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/echo-backup/echo-backup/compose"
)

// MountRoot is where the sentinel mounts each volume, read-only: /protect/<volume>.
const MountRoot = "/protect/"

// Result is what Protect found and did.
type Result struct {
	Sentinel Sentinel `json:"sentinel"`
	// Changed is false when the project was already protected as asked.
	Changed bool     `json:"changed"`
	Added   []string `json:"added,omitempty"`
	// NewImage: the sentinel moved to the database's new image, releasing the old one.
	NewImage bool `json:"newImage,omitempty"`
}

// Protect makes sure a running sentinel holds every data volume of the project. It keeps the
// volumes the existing sentinels hold (one of a profile not active now is still the
// project's), adds new ones, and changes nothing when one running sentinel holds them all
// already. A sentinel is replaced by starting the new one before the old ones go, so the
// volumes are never free; leftovers of an interrupted replacement are folded in the same way.
func Protect(ctx context.Context, api compose.Engine, plan *compose.Plan) (*Result, error) {
	all, err := Find(ctx, api, plan.Name)
	if err != nil {
		return nil, err
	}
	want := wanted(plan, all)
	if len(want) == 0 {
		return nil, &compose.UserError{Err: fmt.Errorf("project %q has no data volume to protect: "+
			"its database and data volumes do not exist yet (run `docker compose up -d` first), "+
			"or it keeps its data in folders, which docker cannot remove", plan.Name)}
	}
	if len(all) == 1 && slices.Equal(all[0].Volumes, want) && !outdated(plan, &all[0]) {
		return keep(ctx, api, &all[0])
	}
	return replace(ctx, api, plan, all, want)
}

// wanted are the volumes the sentinel must hold: the plan's and every existing sentinel's.
func wanted(plan *compose.Plan, all []Sentinel) []string {
	want := plan.DataVolumes()
	for _, s := range all {
		want = union(want, s.Volumes)
	}
	return want
}

// keep starts a sentinel that holds the right volumes but was stopped (by hand, or by an
// engine restart after a manual stop).
func keep(ctx context.Context, api compose.Engine, cur *Sentinel) (*Result, error) {
	if cur.Running() {
		return &Result{Sentinel: *cur}, nil
	}
	if err := startChecked(ctx, api, cur.ID, cur.Image); err != nil {
		return nil, err
	}
	cur.State = string(container.StateRunning)
	return &Result{Sentinel: *cur, Changed: true}, nil
}

// replace starts one sentinel holding volumes and only then removes the old ones (all, in
// Find's order), so that no volume is free in between.
func replace(ctx context.Context, api compose.Engine, plan *compose.Plan, all []Sentinel, volumes []string) (*Result, error) {
	var cur *Sentinel
	if len(all) > 0 {
		cur = &all[0]
	}
	image, err := sentinelImage(ctx, api, plan, cur)
	if err != nil {
		return nil, err
	}
	s := Sentinel{Name: Name(plan.Name), Image: image, Volumes: volumes, Since: firstSince(all, time.Now())}
	var held []string
	for _, old := range all {
		held = union(held, old.Volumes)
	}
	res := &Result{Changed: true, Added: difference(volumes, held), NewImage: cur != nil && outdated(plan, cur)}
	name := freeName(s.Name, all)
	if s.ID, err = create(ctx, api, plan.Name, name, s); err != nil {
		return nil, err
	}
	if err := startChecked(ctx, api, s.ID, image); err != nil {
		_ = remove(ctx, api, []Sentinel{s})
		return nil, err
	}
	s.State, s.Created = string(container.StateRunning), time.Now().UTC().Truncate(time.Second)
	if err := remove(ctx, api, all); err != nil {
		return nil, err
	}
	if name != s.Name {
		if _, err := api.ContainerRename(ctx, s.ID, client.ContainerRenameOptions{NewName: s.Name}); err != nil {
			s.Name = name // it protects all the same; the name is only for people
		}
	}
	res.Sentinel = s
	return res, nil
}

// firstSince is when the project was first protected: the earliest Since of its sentinels,
// else now.
func firstSince(all []Sentinel, now time.Time) time.Time {
	since := now.UTC().Truncate(time.Second)
	for _, s := range all {
		if s.Since.Before(since) {
			since = s.Since
		}
	}
	return since
}

// freeName is base, or base-next, base-next2… when an old sentinel still holds it: the new
// one runs before the old ones go, and is renamed to base afterwards.
func freeName(base string, all []Sentinel) string {
	taken := func(n string) bool {
		return slices.ContainsFunc(all, func(s Sentinel) bool { return s.Name == n })
	}
	name := base
	for i := 1; taken(name); i++ {
		name = base + "-next"
		if i > 1 {
			name += strconv.Itoa(i)
		}
	}
	return name
}

// outdated is true when the database runs a newer image than the sentinel: the sentinel would
// keep the old one from `docker image prune`.
func outdated(plan *compose.Plan, cur *Sentinel) bool {
	db, err := plan.DatabaseContainer()
	return err == nil && db.ImageID != "" && cur.ImageID != "" && db.ImageID != cur.ImageID
}

// sentinelImage is the image the database runs, which is on the engine wherever the project
// ran: nothing is pulled. Its tag when the tag still names that image (readable in `docker
// ps`), else its ID; with the database down, the tag, else what the old sentinel used.
func sentinelImage(ctx context.Context, api compose.Engine, plan *compose.Plan, cur *Sentinel) (string, error) {
	running := ""
	if db, err := plan.DatabaseContainer(); err == nil {
		running = db.ImageID
	}
	if img, err := api.ImageInspect(ctx, plan.Database.Image); plan.Database.Image != "" && err == nil &&
		(running == "" || img.ID == running) {
		return plan.Database.Image, nil
	}
	if running != "" {
		return running, nil
	}
	if cur != nil {
		if _, err := api.ImageInspect(ctx, cur.ImageID); err == nil {
			return cur.Image, nil
		}
	}
	return "", &compose.UserError{Err: fmt.Errorf("the database image %s is not on the engine, and the sentinel "+
		"only uses images already there: pull it first (`docker compose pull %s`)", plan.Database.Image, plan.Database.Service)}
}

// create makes the sentinel: an idle process under an init (so it stops at once on SIGTERM),
// no network, no capabilities, a read-only root, little memory, and every volume read-only.
func create(ctx context.Context, api compose.Engine, project, name string, s Sentinel) (string, error) {
	mounts := make([]mount.Mount, 0, len(s.Volumes))
	for _, v := range s.Volumes {
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: v, Target: MountRoot + v, ReadOnly: true,
			VolumeOptions: &mount.VolumeOptions{NoCopy: true}})
	}
	mounts = append(mounts, imageVolumes(ctx, api, s.Image)...)
	init := true
	pids := int64(8)
	cfg := &container.Config{
		Image:      s.Image,
		Entrypoint: []string{"sleep"},
		Cmd:        []string{"infinity"},
		User:       "65534:65534",
		WorkingDir: "/",
		Labels: map[string]string{
			LabelSentinel: "1",
			LabelProject:  project,
			LabelVolumes:  strings.Join(s.Volumes, ","),
			LabelSince:    s.Since.Format(time.RFC3339),
		},
	}
	host := &container.HostConfig{
		Mounts:         mounts,
		NetworkMode:    network.NetworkNone,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges:true"},
		ReadonlyRootfs: true,
		Init:           &init,
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		Resources:      container.Resources{Memory: 16 << 20, PidsLimit: &pids},
	}
	// Not cut off by Ctrl-C: the engine would create it anyway and we would not know its ID.
	res, err := api.ContainerCreate(context.WithoutCancel(ctx), client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: host})
	if err != nil {
		return "", fmt.Errorf("creating the sentinel container %s from image %s: %w", name, s.Image, err)
	}
	return res.ID, nil
}

// imageVolumes covers the VOLUME folders of the image (postgres declares its data folder)
// with tiny tmpfs mounts: otherwise each sentinel would leave an anonymous volume behind.
func imageVolumes(ctx context.Context, api compose.Engine, image string) []mount.Mount {
	img, err := api.ImageInspect(ctx, image)
	if err != nil || img.Config == nil {
		return nil
	}
	var out []mount.Mount
	for dir := range img.Config.Volumes {
		out = append(out, mount.Mount{Type: mount.TypeTmpfs, Target: dir, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out
}

// startChecked starts the sentinel and makes sure it keeps running: an image without `sleep`
// would exit at once and the restart policy would hide it.
func startChecked(ctx context.Context, api compose.Engine, id, image string) error {
	if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting the sentinel container: %w", err)
	}
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	insp, err := api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("checking the sentinel container: %w", err)
	}
	st := insp.Container.State
	if st != nil && st.Status == container.StateRunning && !st.Restarting && insp.Container.RestartCount == 0 {
		return nil
	}
	code := 0
	if st != nil {
		code = st.ExitCode
	}
	return fmt.Errorf("the sentinel container did not keep running (exit code %d: %s); it runs `sleep infinity` "+
		"in image %s, which must have sleep", code, logTail(api, id), image)
}

func logTail(api compose.Engine, id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logs, err := api.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "5"})
	if err != nil {
		return "no logs"
	}
	defer logs.Close()
	var out bytes.Buffer
	_, _ = stdcopy.StdCopy(&out, &out, logs)
	if s := strings.TrimSpace(out.String()); s != "" {
		return s
	}
	return "no output"
}

// Release removes the project's sentinels and returns those it removed; the volumes are
// then free for `docker compose down -v` and the prunes.
func Release(ctx context.Context, api compose.Engine, project string) ([]Sentinel, error) {
	all, err := Find(ctx, api, project)
	if err != nil {
		return nil, err
	}
	return all, remove(ctx, api, all)
}

// remove deletes sentinels, with their own context so that an interrupted command cannot
// leave one half removed.
func remove(ctx context.Context, api compose.Engine, sentinels []Sentinel) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for _, s := range sentinels {
		_, err := api.ContainerRemove(ctx, s.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("removing the sentinel container %s: %w", orID(s), err)
		}
	}
	return nil
}

func orID(s Sentinel) string {
	if s.Name != "" {
		return s.Name
	}
	return s.ID[:12]
}

func union(a, b []string) []string {
	out := append(append([]string(nil), a...), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

func difference(a, b []string) []string {
	var out []string
	for _, v := range a {
		if !slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}
