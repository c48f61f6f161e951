// Package retention decides which backups a grandfather-father-son policy keeps. It counts as
// restic and borgmatic do: newest first, each rule keeps the newest backup of each of its last
// N periods that hold a backup, and a backup kept by any rule stays. It knows nothing of files.
package retention

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Policy says how many of each period to keep. Zero turns a rule off.
type Policy struct {
	Last    int `json:"keepLast"`
	Daily   int `json:"keepDaily"`
	Weekly  int `json:"keepWeekly"`
	Monthly int `json:"keepMonthly"`
}

// Default is what a self-hoster with a nightly backup usually wants: the last few runs, a week
// of days, a month of weeks, half a year of months.
var Default = Policy{Last: 3, Daily: 7, Weekly: 4, Monthly: 6}

// Check refuses a policy that would keep nothing or counts below zero.
func (p Policy) Check() error {
	if p.Last < 0 || p.Daily < 0 || p.Weekly < 0 || p.Monthly < 0 {
		return errors.New("keep counts cannot be negative")
	}
	if p.Last+p.Daily+p.Weekly+p.Monthly == 0 {
		return errors.New("the policy keeps nothing: set at least one --keep-* above zero")
	}
	return nil
}

// Item is what the policy needs to know of one backup.
type Item struct {
	Name    string
	Created time.Time
	// Pinned is why the backup must stay whatever the policy says ("" when it is not pinned).
	Pinned string
	// Verified is true when the backup's last verify passed.
	Verified bool
}

// Decision is the verdict on one item, with every reason it stays or the one it goes.
type Decision struct {
	Item
	Keep    bool
	Reasons []string
	// Future is true for a backup dated after now (a wrong clock): it is kept and left out of
	// the counting, so it cannot hold a period's slot for years.
	Future bool
}

// ClockSkew is how far after now a backup may be dated and still be counted: a clock stepped
// back by NTP must not make the backup just taken "future".
const ClockSkew = 5 * time.Minute

// Reasons a Decision can carry besides the rules' own.
const (
	ReasonFuture  = "dated in the future"
	ReasonOutside = "outside the policy"
)

type rule struct {
	name   string
	count  int
	period func(t time.Time, i int) string
}

// Apply decides for every item, newest first. Periods are counted in now's location (cron's
// time zone); a backup dated after now is kept and counted in no period.
func Apply(items []Item, p Policy, now time.Time) []Decision {
	loc := now.Location()
	out := make([]Decision, len(items))
	for i, it := range items {
		out[i] = Decision{Item: it, Future: it.Created.After(now.Add(ClockSkew))}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	rules := []*rule{
		{"last", p.Last, func(_ time.Time, i int) string { return fmt.Sprint(i) }},
		{"daily", p.Daily, func(t time.Time, _ int) string { return t.Format("2006-01-02") }},
		{"weekly", p.Weekly, func(t time.Time, _ int) string {
			y, w := t.ISOWeek()
			return fmt.Sprintf("%d-W%02d", y, w)
		}},
		{"monthly", p.Monthly, func(t time.Time, _ int) string { return t.Format("2006-01") }},
	}
	seen := make([]string, len(rules))
	n := 0 // the item's place among those counted
	for i := range out {
		d := &out[i]
		if d.Future {
			d.Keep = true
			d.Reasons = append(d.Reasons, ReasonFuture)
			continue
		}
		n++
		for r, ru := range rules {
			if ru.count == 0 {
				continue
			}
			period := ru.period(d.Created.In(loc), n-1)
			if seen[r] == period {
				continue
			}
			seen[r] = period
			ru.count--
			d.Keep = true
			if ru.name == "last" {
				d.Reasons = append(d.Reasons, fmt.Sprintf("last %d of %d", n, p.Last))
			} else {
				d.Reasons = append(d.Reasons, ru.name+" "+period)
			}
		}
	}
	protect(out)
	for i := range out {
		if !out[i].Keep {
			out[i].Reasons = []string{ReasonOutside}
		}
	}
	return out
}

// protect keeps what no policy may remove: pinned backups and the newest one that verified,
// so a prune never leaves the project without a backup known to be good.
func protect(out []Decision) {
	verified := false
	for i := range out {
		d := &out[i]
		if d.Pinned != "" {
			d.Keep = true
			d.Reasons = append(d.Reasons, "pinned ("+d.Pinned+")")
		}
		// A future-dated backup is kept anyway; the newest verified one must be a real one.
		if d.Verified && !verified && !d.Future {
			verified = true
			d.Keep = true
			d.Reasons = append(d.Reasons, "newest verified")
		}
	}
}
