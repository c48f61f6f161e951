package guard

import (
	"slices"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/echo-backup/echo-backup/compose"
)

func TestProtectByDefault(t *testing.T) {
	for _, tc := range []struct {
		ext     any
		want    bool
		wantErr bool
	}{
		{ext: nil},
		{ext: map[string]any{}},
		{ext: map[string]any{"protect": true}, want: true},
		{ext: map[string]any{"protect": false}},
		{ext: map[string]any{"protect": "yes"}, want: true},
		{ext: map[string]any{"protect": "off"}},
		{ext: map[string]any{"protect": "maybe"}, wantErr: true},
		{ext: map[string]any{"protect": 1}, wantErr: true},
		{ext: "protect", wantErr: true},
	} {
		p := &types.Project{Extensions: types.Extensions{}}
		if tc.ext != nil {
			p.Extensions[SettingKey] = tc.ext
		}
		got, err := ProtectByDefault(&compose.Plan{Project: p})
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%v: got %v, %v; want %v, error %v", tc.ext, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !compose.IsUserError(err) {
			t.Errorf("%v: %v is not a user error", tc.ext, err)
		}
	}
}

func TestUnprotected(t *testing.T) {
	plan := &compose.Plan{Items: []compose.Item{
		{Kind: "volume", Source: "p_pgdata", Role: compose.RoleDatabase, Exists: true},
		{Kind: "volume", Source: "p_data", Role: compose.RoleData, Exists: true},
		{Kind: "volume", Source: "p_cache", Role: compose.RoleCache, Exists: true},
	}}
	s := &Sentinel{State: "running", Volumes: []string{"p_pgdata"}}
	if u := Unprotected(plan, s); len(u) != 1 || u[0] != "p_data" {
		t.Errorf("Unprotected = %v, want [p_data]", u)
	}
	s.State = "exited"
	if u := Unprotected(plan, s); len(u) != 2 {
		t.Errorf("Unprotected with a stopped sentinel = %v, want both", u)
	}
}

// TestWantedFoldsLeftovers: after an interrupted replacement every sentinel's volumes are
// kept, whichever of them comes first.
func TestWantedFoldsLeftovers(t *testing.T) {
	plan := &compose.Plan{Items: []compose.Item{
		{Kind: "volume", Source: "p_pgdata", Role: compose.RoleDatabase, Exists: true},
	}}
	all := []Sentinel{
		{Name: "echobackup-sentinel-p-next", Volumes: []string{"p_pgdata"}},
		{Name: "echobackup-sentinel-p", Volumes: []string{"p_data", "other_profile"}},
	}
	want := []string{"other_profile", "p_data", "p_pgdata"}
	if got := wanted(plan, all); !slices.Equal(got, want) {
		t.Errorf("wanted = %v, want %v", got, want)
	}
	all[0], all[1] = all[1], all[0]
	if got := wanted(plan, all); !slices.Equal(got, want) {
		t.Errorf("wanted in the other order = %v, want %v", got, want)
	}
}

// TestOrderTies: two sentinels with the same Since (a replacement keeps it) are ordered by
// creation time, the same whatever order the engine lists them in.
func TestOrderTies(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	old := Sentinel{ID: "b", State: "running", Since: since, Created: since}
	newer := Sentinel{ID: "a", State: "running", Since: since, Created: since.Add(time.Minute)}
	stopped := Sentinel{ID: "c", State: "exited", Since: since, Created: since.Add(time.Hour)}
	for _, in := range [][]Sentinel{{old, newer, stopped}, {stopped, newer, old}, {newer, stopped, old}} {
		Order(in)
		if in[0].ID != "a" || in[1].ID != "b" || in[2].ID != "c" {
			t.Errorf("Order = %s %s %s, want a b c", in[0].ID, in[1].ID, in[2].ID)
		}
	}
	twin := Sentinel{ID: "0", State: "running", Since: since, Created: since}
	for _, in := range [][]Sentinel{{old, twin}, {twin, old}} {
		if Order(in); in[0].ID != "0" {
			t.Errorf("equal sentinels ordered %s %s, want the lower ID first", in[0].ID, in[1].ID)
		}
	}
}

func TestFreeNameAndFirstSince(t *testing.T) {
	base := Name("p")
	if got := freeName(base, nil); got != base {
		t.Errorf("freeName with none = %s", got)
	}
	all := []Sentinel{{Name: base + "-next"}, {Name: base}}
	if got := freeName(base, all); got != base+"-next2" {
		t.Errorf("freeName with both taken = %s", got)
	}
	early := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	all[0].Since, all[1].Since = early.Add(time.Hour), early
	if got := firstSince(all, time.Now()); !got.Equal(early) {
		t.Errorf("firstSince = %s, want %s", got, early)
	}
}
