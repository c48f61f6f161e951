package engine

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Owner is the process that created a helper container: the host it runs on, its PID, and
// the time it started (field 22 of /proc/PID/stat, in clock ticks since boot), so that a PID
// the kernel has since given to another process is not taken for the owner.
type Owner struct {
	Host  string
	PID   int
	Start string
}

var (
	selfOnce sync.Once
	self     Owner
)

// Self is this process as an owner; on a system without /proc its start time is empty.
func Self() Owner {
	selfOnce.Do(func() {
		host, _ := os.Hostname()
		start, _ := processStart(os.Getpid())
		self = Owner{Host: host, PID: os.Getpid(), Start: start}
	})
	return self
}

// Labels are the owner's labels for a container it creates.
func (o Owner) Labels() map[string]string {
	return map[string]string{LabelOwnerHost: o.Host, LabelOwnerPID: strconv.Itoa(o.PID), LabelOwnerStart: o.Start}
}

// ownerOf reads a container's owner labels; ok is false when it has none (an older helper).
func ownerOf(labels map[string]string) (o Owner, ok bool) {
	pid, err := strconv.Atoi(labels[LabelOwnerPID])
	if err != nil || labels[LabelOwnerHost] == "" {
		return Owner{}, false
	}
	return Owner{Host: labels[LabelOwnerHost], PID: pid, Start: labels[LabelOwnerStart]}, true
}

// alive tells whether the owner still runs, for an owner on this host. A zombie has ended:
// a killed plugin stays one until the process it was reparented to reaps it.
func (o Owner) alive() bool {
	start, err := processStart(o.PID)
	if err != nil || start == "" {
		return false
	}
	return o.Start == "" || start == o.Start
}

// processStart is field 22 of /proc/PID/stat, "" for a process that has ended but is not yet
// reaped (state Z or X). The command name (field 2) is in parentheses and may hold spaces or
// parentheses itself, so the fields are counted after the last ")".
func processStart(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	return statStart(string(b))
}

func statStart(stat string) (string, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return "", fmt.Errorf("unreadable process status %q", stat)
	}
	fields := strings.Fields(stat[i+1:])
	// fields[0] is field 3 (the state), so field 22 is fields[19].
	if len(fields) < 20 {
		return "", fmt.Errorf("short process status %q", stat)
	}
	if fields[0] == "Z" || fields[0] == "X" {
		return "", nil
	}
	return fields[19], nil
}
