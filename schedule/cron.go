// Package schedule runs backups unattended: it writes and reads the one crontab entry (or
// systemd user timer) that runs the plugin's scheduled job, computes when it runs next, and
// gives that job its lock (a store.Lock handed to the work), its log, its record of the last run
// and its pings (a Pinger: package ping). Install, Remove, Find and ReadStatus are the
// commands' whole sequences. It needs neither the engine nor compose.
package schedule

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Expr is a parsed 5-field cron expression: minute hour day-of-month month day-of-week.
type Expr struct {
	text             string
	minute, hour     uint64
	dom, month, dow  uint64
	domStar, dowStar bool
}

var aliases = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

var hhmm = regexp.MustCompile(`^([01]?[0-9]|2[0-3]):([0-5][0-9])$`)

// ParseAt reads --at: a time of day "HH:MM" (every day), an @alias or a 5-field expression.
func ParseAt(s string) (Expr, error) {
	s = strings.TrimSpace(s)
	if m := hhmm.FindStringSubmatch(s); m != nil {
		h, _ := strconv.Atoi(m[1])
		mi, _ := strconv.Atoi(m[2])
		return Parse(fmt.Sprintf("%d %d * * *", mi, h))
	}
	return Parse(s)
}

// Parse reads a cron expression as Debian's cron does: numbers, *, ranges a-b, steps /n,
// lists, month and weekday names, 7 for Sunday, and the @aliases (not @reboot).
func Parse(s string) (Expr, error) {
	text := strings.Join(strings.Fields(s), " ")
	spec := text
	if strings.HasPrefix(spec, "@") {
		// Cron reads only the lowercase spelling, so that is the one written.
		text = strings.ToLower(text)
		a, ok := aliases[text]
		if !ok {
			return Expr{}, fmt.Errorf("cron expression %q: unknown or unsupported @ alias", s)
		}
		spec = a
	}
	f := strings.Fields(spec)
	if len(f) != 5 {
		return Expr{}, fmt.Errorf("cron expression %q: want 5 fields (minute hour day month weekday) or HH:MM", s)
	}
	e := Expr{text: text}
	var err error
	parts := []struct {
		dst      *uint64
		min, max int
		names    []string
	}{
		{&e.minute, 0, 59, nil}, {&e.hour, 0, 23, nil}, {&e.dom, 1, 31, nil},
		{&e.month, 1, 12, []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
		{&e.dow, 0, 7, []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
	}
	for i, p := range parts {
		if *p.dst, err = parseField(f[i], p.min, p.max, p.names); err != nil {
			return Expr{}, fmt.Errorf("cron expression %q: field %d %q: %w", s, i+1, f[i], err)
		}
	}
	if e.dow&(1<<7) != 0 {
		e.dow |= 1 // 7 is Sunday too
	}
	e.domStar, e.dowStar = strings.HasPrefix(f[2], "*"), strings.HasPrefix(f[4], "*")
	return e, nil
}

func parseField(field string, min, max int, names []string) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(field, ",") {
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("bad step %q", stepText)
			}
			step = n
		}
		lo, hi := min, max
		if rng != "*" {
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = fieldValue(a, min, max, names); err != nil {
				return 0, err
			}
			hi = lo
			if isRange {
				if hi, err = fieldValue(b, min, max, names); err != nil {
					return 0, err
				}
			} else if hasStep {
				hi = max // "5/15" means from 5 to the end
			}
			if hi < lo {
				return 0, fmt.Errorf("range %q runs backwards", rng)
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << v
		}
	}
	return bits, nil
}

func fieldValue(s string, min, max int, names []string) (int, error) {
	for i, n := range names {
		if strings.EqualFold(s, n) {
			return i + min, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < min || v > max {
		return 0, fmt.Errorf("%q is not a number from %d to %d", s, min, max)
	}
	return v, nil
}

// String is the expression as written.
func (e Expr) String() string { return e.text }

// IsZero is true for an Expr that was never parsed.
func (e Expr) IsZero() bool { return e.text == "" }

func has(bits uint64, v int) bool { return bits&(1<<v) != 0 }

// dayMatches follows cron: when both day fields are restricted, either one matching is enough.
func (e Expr) dayMatches(t time.Time) bool {
	dom, dow := has(e.dom, t.Day()), has(e.dow, int(t.Weekday()))
	if e.domStar || e.dowStar {
		return dom && dow
	}
	return dom || dow
}

// maxSteps bounds Next's search whatever the time zone does: five years of the slowest
// search (every hour of every day, then every minute of the last hour) takes far fewer.
const maxSteps = 1 << 20

// Next is the first minute strictly after t that the expression fires, in t's location; the
// zero time if there is none within five years (such as 30 February).
func (e Expr) Next(t time.Time) time.Time {
	loc := t.Location()
	t = t.Truncate(time.Minute).Add(time.Minute)
	end := t.AddDate(5, 0, 0)
	for i := 0; i < maxSteps && t.Before(end); i++ {
		var next time.Time
		switch {
		case !has(e.month, int(t.Month())):
			next = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
		case !e.dayMatches(t):
			next = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
		case !has(e.hour, t.Hour()):
			next = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, loc)
			if !next.After(t) {
				// The next hour's start is in a spring-forward gap, and Go answers with a time
				// before it (02:00 in New York on the change day is 01:00 EST): an hour of
				// real time later is past the gap.
				next = t.Add(time.Hour - time.Duration(t.Minute())*time.Minute)
			}
		case !has(e.minute, t.Minute()):
			next = t.Add(time.Minute)
		default:
			return t
		}
		if !next.After(t) {
			next = t.Add(time.Minute) // whatever else a zone does, every step goes forward
		}
		t = next
	}
	return time.Time{}
}
