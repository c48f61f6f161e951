package plugin

import (
	"strings"
	"testing"
	"time"

	clihooks "github.com/docker/cli/cli-plugins/hooks"
)

func TestHookAnswerIsANextStepsHint(t *testing.T) {
	t.Setenv("ECHOBACKUP_DIR", "")
	h := hookAnswer(t.TempDir(), time.Now())
	if h.Type != clihooks.NextSteps || !strings.HasPrefix(h.Template, "WARNING: no echobackup backup in ./backups") {
		t.Errorf("hint %+v", h)
	}
}
