package engine

import (
	"context"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// labelSentinel is guard's label; the sentinel carries no helper label, and is skipped by
// name here too, as it must never be removed by this sweep.
const labelSentinel = "com.echobackup.sentinel"

// Reaped says what ReapHelpers found.
type Reaped struct {
	Removed []string // helpers whose owner on this host is gone, now removed
	Failed  []error
	// Elsewhere are helpers of a command on another host, left alone; Unowned have no owner
	// labels (made by an older echo-backup), left alone too.
	Elsewhere []HelperInfo
	Unowned   []HelperInfo
}

// HelperInfo is a helper left alone, for one line of warning.
type HelperInfo struct {
	ID      string
	Host    string
	Purpose string
	Age     time.Duration
}

// ReapHelpers removes the project's helper containers whose owner process, on this host, no
// longer runs: helpers of a killed command. One filtered list; nothing is removed that lacks
// our project and helper labels or whose owner runs or is on another host.
//
// A command killed while its create request was under way gets that container after we
// listed: when what we removed was only seconds old, the kill was recent, so we look again
// once, a moment later.
func ReapHelpers(ctx context.Context, api Engine, project string) (*Reaped, error) {
	out, recent, err := reapOnce(ctx, api, project)
	if err != nil || !recent {
		return out, err
	}
	select {
	case <-ctx.Done():
		return out, nil
	case <-time.After(lateCreate):
	}
	again, _, err := reapOnce(ctx, api, project)
	if err != nil {
		return out, nil
	}
	out.Removed = append(out.Removed, again.Removed...)
	out.Failed = append(out.Failed, again.Failed...)
	return out, nil
}

// Within recentKill of its creation a removed helper means a recent kill; lateCreate is how
// long the engine may still take to finish a create request its dead client sent.
const (
	recentKill = 10 * time.Second
	lateCreate = 750 * time.Millisecond
)

func reapOnce(ctx context.Context, api Engine, project string) (out *Reaped, recent bool, err error) {
	res, err := api.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelEchoProject+"="+project, LabelEchoRole),
	})
	if err != nil {
		return nil, false, fmt.Errorf("looking for helper containers of project %q: %w", project, err)
	}
	out = &Reaped{}
	me := Self()
	now := time.Now()
	for _, c := range res.Items {
		switch decideReap(c, me) {
		case reapRemove:
			_, err := api.ContainerRemove(context.WithoutCancel(ctx), c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			// Not found or a removal under way: the engine's auto-removal got there first.
			if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
				out.Failed = append(out.Failed, fmt.Errorf("removing helper container %.12s: %w", c.ID, err))
				continue
			}
			out.Removed = append(out.Removed, c.ID)
			recent = recent || now.Sub(time.Unix(c.Created, 0)) < recentKill
		case reapElsewhere:
			out.Elsewhere = append(out.Elsewhere, info(c, now))
		case reapUnowned:
			out.Unowned = append(out.Unowned, info(c, now))
		}
	}
	return out, recent, nil
}

type reapDecision int

const (
	reapKeep      reapDecision = iota // ours and alive, or not a helper
	reapRemove                        // owner on this host is gone
	reapElsewhere                     // owner on another host: cannot tell
	reapUnowned                       // no owner labels
)

// decideReap is the rule for one listed container, apart from the engine for tests.
func decideReap(c container.Summary, me Owner) reapDecision {
	if _, sentinel := c.Labels[labelSentinel]; sentinel {
		return reapKeep
	}
	if _, helper := c.Labels[LabelEchoRole]; !helper {
		return reapKeep
	}
	o, ok := ownerOf(c.Labels)
	switch {
	case !ok:
		return reapUnowned
	case o.Host != me.Host:
		return reapElsewhere
	case o == me, o.alive():
		return reapKeep
	}
	return reapRemove
}

func info(c container.Summary, now time.Time) HelperInfo {
	return HelperInfo{ID: c.ID, Host: c.Labels[LabelOwnerHost], Purpose: c.Labels[LabelEchoRole],
		Age: now.Sub(time.Unix(c.Created, 0))}
}
