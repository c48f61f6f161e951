package plugin

import (
	"reflect"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/echo-backup/echo-backup/store"
)

func TestBackupCandidates(t *testing.T) {
	created := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	entries := []store.Entry{
		{Name: "echo-20261201T100000Z.tar.zst", Created: created, Size: 2 << 20, Verified: &store.Verification{}},
		{Name: "echo-20261130T100000Z.tar.zst", Created: created.Add(-24 * time.Hour), Size: 1000, Pinned: "pre-restore"},
	}
	got := backupCandidates(entries, "")
	want := []string{
		"latest\tthe newest: echo-20261201T100000Z.tar.zst",
		"echo-20261201T100000Z.tar.zst\t2026-12-01 10:00:00 UTC, 2.1MB, verified",
		"echo-20261130T100000Z.tar.zst\t2026-11-30 10:00:00 UTC, 1kB, pinned: pre-restore",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("candidates:\n%q\nwant\n%q", got, want)
	}
	if got := backupCandidates(entries, "echo-202611"); len(got) != 1 || got[0][:29] != "echo-20261130T100000Z.tar.zst" {
		t.Errorf("prefix echo-202611: %q", got)
	}
	if got := backupCandidates(entries, "la"); len(got) != 1 {
		t.Errorf("prefix la: %q", got)
	}
	if got := backupCandidates(nil, ""); got != nil {
		t.Errorf("no backups must offer nothing, not latest: %q", got)
	}
}

func TestContextCandidates(t *testing.T) {
	got := contextCandidates([]string{"default", "prod", "staging", "prod-eu"}, "staging", "pr")
	if want := []string{"prod", "prod-eu"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := contextCandidates([]string{"prod"}, "prod", ""); !reflect.DeepEqual(got, []string{"default"}) {
		t.Errorf("from prod: %q, want default only", got)
	}
}

func TestServiceCandidates(t *testing.T) {
	p := &types.Project{Services: types.Services{}}
	for name, img := range map[string]string{"db": "postgres:16", "echo": "echo:latest", "redis": "redis:7"} {
		svc := types.ServiceConfig{Name: name}
		svc.Image = img // a field of an embedded struct in this compose-go
		p.Services[name] = svc
	}
	if got, want := serviceCandidates(p, ""), []string{"db\tpostgres:16", "echo\techo:latest", "redis\tredis:7"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := serviceCandidates(p, "e"); len(got) != 1 {
		t.Errorf("prefix e: %q", got)
	}
}
