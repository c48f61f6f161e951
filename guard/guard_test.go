package guard

import (
	"testing"

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

func TestDataVolumes(t *testing.T) {
	plan := &compose.Plan{Items: []compose.Item{
		{Kind: "volume", Source: "p_pgdata", Role: compose.RoleDatabase, Exists: true},
		{Kind: "volume", Source: "p_data", Role: compose.RoleData, Exists: true},
		{Kind: "volume", Source: "p_data", Role: compose.RoleData, Exists: true}, // mounted by two services
		{Kind: "volume", Source: "p_cache", Role: compose.RoleCache, Exists: true},
		{Kind: "volume", Source: "p_gone", Role: compose.RoleData},
		{Kind: "bind", Source: "/srv/echo/data", Role: compose.RoleData, Exists: true},
	}}
	got := DataVolumes(plan)
	if len(got) != 2 || got[0] != "p_data" || got[1] != "p_pgdata" {
		t.Errorf("DataVolumes = %v, want [p_data p_pgdata]", got)
	}
	s := &Sentinel{State: "running", Volumes: []string{"p_pgdata"}}
	if u := Unprotected(plan, s); len(u) != 1 || u[0] != "p_data" {
		t.Errorf("Unprotected = %v, want [p_data]", u)
	}
	s.State = "exited"
	if u := Unprotected(plan, s); len(u) != 2 {
		t.Errorf("Unprotected with a stopped sentinel = %v, want both", u)
	}
}
