package schedule

import (
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	utc := time.UTC
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, utc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct{ expr, from, want string }{
		{"03:00", "2026-11-26 12:10", "2026-11-27 03:00"},
		{"03:00", "2026-11-26 02:59", "2026-11-26 03:00"},
		{"03:00", "2026-11-26 03:00", "2026-11-27 03:00"}, // strictly after
		{"0 3 * * *", "2026-12-31 04:00", "2027-01-01 03:00"},
		{"*/15 * * * *", "2026-11-26 12:10", "2026-11-26 12:15"},
		{"5/20 * * * *", "2026-11-26 12:46", "2026-11-26 13:05"},
		{"30 2 * * 1-5", "2026-11-27 03:00", "2026-11-30 02:30"}, // Friday after the run -> Monday
		{"0 4 * * sun", "2026-11-26 00:00", "2026-11-29 04:00"},
		{"0 4 * * 7", "2026-11-26 00:00", "2026-11-29 04:00"},
		{"0 0 1 jan,jul *", "2026-11-26 00:00", "2027-01-01 00:00"},
		// Both day fields restricted: either matches (the 1st, or a Monday).
		{"0 0 1 * mon", "2026-11-26 00:00", "2026-11-30 00:00"},
		{"0 0 29 2 *", "2026-03-01 00:00", "2028-02-29 00:00"},
		{"@weekly", "2026-11-26 00:00", "2026-11-29 00:00"},
		{"@hourly", "2026-11-26 10:59", "2026-11-26 11:00"},
	} {
		e, err := ParseAt(c.expr)
		if err != nil {
			t.Errorf("%q: %v", c.expr, err)
			continue
		}
		if got := e.Next(at(c.from)); !got.Equal(at(c.want)) {
			t.Errorf("%q after %s: %s, want %s", c.expr, c.from, got.Format("2006-01-02 15:04 Mon"), c.want)
		}
	}
	if e, _ := Parse("0 0 30 2 *"); !e.Next(at("2026-01-01 00:00")).IsZero() {
		t.Error("30 February fired")
	}
}

func TestNextAcrossDST(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no zoneinfo:", err)
	}
	e, _ := ParseAt("02:30") // does not exist on 2026-03-29 in Berlin
	got := e.Next(time.Date(2026, 3, 28, 12, 0, 0, 0, berlin))
	if got.Day() != 30 || got.Hour() != 2 || got.Minute() != 30 {
		t.Errorf("next 02:30 after the spring gap: %s", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"", "3:00 am", "24:00", "60 * * * *", "* * * *", "0 3 * * * *", "5-1 * * * *",
		"*/0 * * * *", "@reboot", "0 3 32 * *", "0 3 * foo *"} {
		if _, err := ParseAt(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
	if e, err := ParseAt("3:05"); err != nil || e.String() != "5 3 * * *" {
		t.Errorf("3:05 -> %q, %v", e, err)
	}
}
