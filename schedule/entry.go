package schedule

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Marker ends every line this package writes, so install replaces only its own line and remove
// takes out nothing else. The JSON after it names the project, its folder and its backup folder:
// two folders may hold projects of the same name, and each keeps its own entry.
const Marker = "# echobackup-schedule "

// Job is what one scheduled entry runs: a program with its arguments and environment, its
// output appended to Log.
type Job struct {
	Project string            `json:"project"`
	Folder  string            `json:"folder"`         // the project folder
	Dir     string            `json:"dir"`            // the backup folder: lock, log and last-run record live there
	Ping    string            `json:"ping,omitempty"` // the ping URL, redacted, for status
	Log     string            `json:"-"`
	Env     map[string]string `json:"-"`
	Argv    []string          `json:"-"`
}

// Entry is one line of ours in a crontab.
type Entry struct {
	Expr    Expr
	Project string
	Folder  string // empty in entries written before the folder was recorded
	Dir     string
	Command string // the shell command as cron passes it to /bin/sh, % unescaped
	Line    string // the line as it stands in the crontab
}

// Line is the crontab line: the schedule, then a /bin/sh command that sets the environment,
// runs the job with absolute paths and appends its output to the log.
func Line(e Expr, j Job) (string, error) {
	meta, err := json.Marshal(j)
	if err != nil {
		return "", err
	}
	return e.String() + " " + cronEscape(ShellCommand(j)+" "+Marker+string(meta)), nil
}

// ShellCommand is the job as one /bin/sh command line. The shell execs the program rather than
// waiting for it, so its own command line does not stay in the process list during the run.
func ShellCommand(j Job) string {
	var b strings.Builder
	keys := make([]string, 0, len(j.Env))
	for k := range j.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k + "=" + ShellQuote(j.Env[k]) + " ")
	}
	b.WriteString("exec ")
	for i, a := range j.Argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(ShellQuote(a))
	}
	b.WriteString(" </dev/null >>" + ShellQuote(j.Log) + " 2>&1")
	return b.String()
}

// ShellQuote quotes s for /bin/sh, in single quotes unless it is plainly safe.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// cron turns an unescaped % in a command into a newline, and \% into %.
func cronEscape(s string) string { return strings.ReplaceAll(s, "%", `\%`) }

func cronUnescape(s string) string { return strings.ReplaceAll(s, `\%`, "%") }

// Is says whether the entry is the one of project in folder. An entry without a folder, from
// before it was recorded, belongs to every folder of that name.
func (e Entry) Is(project, folder string) bool {
	return e.Project == project && (e.Folder == "" || e.Folder == folder)
}

// FindIn returns the entry of project in folder in a crontab's text; ok is false when there is none.
func FindIn(crontab, project, folder string) (Entry, bool) {
	for _, line := range strings.Split(crontab, "\n") {
		if e, ok := parseLine(line); ok && e.Is(project, folder) {
			return e, true
		}
	}
	return Entry{}, false
}

// Others returns the entries of projects of the same name in other folders.
func Others(crontab, project, folder string) []Entry {
	var others []Entry
	for _, line := range strings.Split(crontab, "\n") {
		if e, ok := parseLine(line); ok && e.Project == project && !e.Is(project, folder) {
			others = append(others, e)
		}
	}
	return others
}

func parseLine(line string) (Entry, bool) {
	trimmed := strings.TrimSpace(line)
	i := strings.LastIndex(trimmed, Marker)
	if i < 0 || strings.HasPrefix(trimmed, "#") {
		return Entry{}, false
	}
	var meta Job
	if json.Unmarshal([]byte(cronUnescape(trimmed[i+len(Marker):])), &meta) != nil || meta.Project == "" {
		return Entry{}, false
	}
	n := 5
	if strings.HasPrefix(trimmed, "@") {
		n = 1
	}
	f := strings.Fields(trimmed[:i])
	if len(f) <= n {
		return Entry{}, false
	}
	expr, err := Parse(strings.Join(f[:n], " "))
	if err != nil {
		return Entry{}, false
	}
	cmd := trimmed[:i]
	for k := 0; k < n; k++ { // drop the schedule fields, keep the command's own spacing
		cmd = strings.TrimLeft(cmd, " \t")
		cmd = cmd[strings.IndexAny(cmd+" ", " \t"):]
	}
	return Entry{Expr: expr, Project: meta.Project, Folder: meta.Folder, Dir: meta.Dir, Line: line,
		Command: strings.TrimSpace(cronUnescape(cmd))}, true
}

// Put returns the crontab with the line of project in folder set to line: in place of the old
// one, else at the end. Every other byte stays as it was.
func Put(crontab, project, folder, line string) string {
	var b strings.Builder
	found := false
	for _, seg := range strings.SplitAfter(crontab, "\n") {
		if e, ok := parseLine(strings.TrimSuffix(seg, "\n")); ok && e.Is(project, folder) {
			if !found { // a second copy, from an edit by hand, is dropped
				b.WriteString(line + "\n")
			}
			found = true
			continue
		}
		b.WriteString(seg)
	}
	if found {
		return b.String()
	}
	out := b.String()
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n" // cron ignores a last line without one
	}
	return out + line + "\n"
}

// Delete returns the crontab without the line of project in folder, and whether there was one.
// Every other byte stays as it was.
func Delete(crontab, project, folder string) (string, bool) {
	var b strings.Builder
	found := false
	for _, seg := range strings.SplitAfter(crontab, "\n") {
		if e, ok := parseLine(strings.TrimSuffix(seg, "\n")); ok && e.Is(project, folder) {
			found = true
			continue
		}
		b.WriteString(seg)
	}
	return b.String(), found
}

// String shows the entry for people: the schedule and the command.
func (e Entry) String() string { return fmt.Sprintf("%s %s", e.Expr, e.Command) }
