package engine

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestStatStart(t *testing.T) {
	// A command name with spaces and a parenthesis, as a process may give itself.
	stat := "4242 (we(ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10"
	got, err := statStart(stat)
	if err != nil || got != "987654" {
		t.Fatalf("statStart = %q, %v; want 987654", got, err)
	}
	if got, err := statStart(strings.Replace(stat, ") S ", ") Z ", 1)); err != nil || got != "" {
		t.Errorf("a zombie's start = %q, %v; want none", got, err)
	}
	if _, err := statStart("4242 (short) S 1"); err == nil {
		t.Error("a short status was accepted")
	}
	if _, err := processStart(os.Getpid()); err != nil {
		t.Fatalf("our own start time: %v", err)
	}
}

// A helper is removed only when its owner, on this host, is gone: a PID that now belongs to
// another process (another start time) counts as gone; the sentinel, containers without our
// labels, live owners, other hosts and helpers without owner labels stay.
func TestDecideReap(t *testing.T) {
	me := Self()
	if me.Start == "" {
		t.Fatal("no start time for this process")
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	helper := func(host string, pid int, start string) container.Summary {
		return container.Summary{Labels: map[string]string{LabelEchoProject: "p", LabelEchoRole: "pg",
			LabelOwnerHost: host, LabelOwnerPID: strconv.Itoa(pid), LabelOwnerStart: start}}
	}
	parentStart, err := processStart(os.Getppid())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		c    container.Summary
		want reapDecision
	}{
		{"ours", helper(me.Host, me.PID, me.Start), reapKeep},
		{"another live process", helper(me.Host, os.Getppid(), parentStart), reapKeep},
		{"owner gone", helper(me.Host, dead.Process.Pid, "12345"), reapRemove},
		{"PID reused", helper(me.Host, me.PID, me.Start+"0"), reapRemove},
		{"other host", helper(me.Host+"-other", dead.Process.Pid, "1"), reapElsewhere},
		{"no owner labels", container.Summary{Labels: map[string]string{LabelEchoProject: "p", LabelEchoRole: "pg"}}, reapUnowned},
		{"sentinel", container.Summary{Labels: map[string]string{LabelEchoProject: "p", labelSentinel: "1",
			LabelOwnerHost: me.Host, LabelOwnerPID: strconv.Itoa(dead.Process.Pid)}}, reapKeep},
		{"not a helper", container.Summary{Labels: map[string]string{LabelEchoProject: "p",
			LabelOwnerHost: me.Host, LabelOwnerPID: strconv.Itoa(dead.Process.Pid)}}, reapKeep},
	}
	for _, c := range cases {
		if got := decideReap(c.c, me); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
		}
	}
}

func TestCapped(t *testing.T) {
	c := capped{max: 5}
	c.Write([]byte("abc"))
	c.Write([]byte("defg"))
	if c.String() != "cdefg" {
		t.Errorf("kept %q", c.String())
	}
	c.Write([]byte("0123456789"))
	if c.String() != "56789" {
		t.Errorf("kept %q", c.String())
	}
}
