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

// In New York the clock jumps from 02:00 to 03:00 on 2026-03-08, and Go turns 02:00 that day
// into 01:00 EST: the search must still move forward and find 03:00 EDT.
func TestNextAcrossDSTNewYork(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no zoneinfo:", err)
	}
	for _, c := range []struct {
		at   string
		from time.Time
		want time.Time
	}{
		{"03:00", time.Date(2026, 3, 7, 12, 0, 0, 0, ny), time.Date(2026, 3, 8, 3, 0, 0, 0, ny)},
		{"02:30", time.Date(2026, 3, 7, 12, 0, 0, 0, ny), time.Date(2026, 3, 9, 2, 30, 0, 0, ny)}, // no 02:30 on the 8th
		{"0 * * * *", time.Date(2026, 3, 8, 1, 30, 0, 0, ny), time.Date(2026, 3, 8, 3, 0, 0, 0, ny)},
	} {
		e, _ := ParseAt(c.at)
		if got := nextWithin(t, e, c.from); !got.Equal(c.want) {
			t.Errorf("%s after %s: %s, want %s", c.at, c.from, got, c.want)
		}
	}
}

// Whatever a zone's clock does, Next returns, moves forward and lands on a time that matches.
func TestNextAlwaysForwardInOddZones(t *testing.T) {
	for _, name := range []string{"America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Santiago",
		"Asia/Kolkata", "America/Havana", "Asia/Tehran"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Skip("no zoneinfo:", err)
		}
		for _, at := range []string{"03:00", "02:30", "0 0 * * *", "*/20 1-3 * * *", "0 * * * *"} {
			e, _ := ParseAt(at)
			for from := time.Date(2026, 1, 1, 0, 7, 0, 0, loc); from.Year() == 2026; from = from.Add(5 * time.Hour) {
				got := nextWithin(t, e, from)
				if !got.After(from) || got.Sub(from) > 50*time.Hour || !has(e.minute, got.Minute()) || !has(e.hour, got.Hour()) {
					t.Fatalf("%s: %q after %s: %s", name, at, from, got)
				}
			}
		}
	}
}

// nextWithin fails the test, instead of hanging it, when Next does not return.
func nextWithin(t *testing.T, e Expr, from time.Time) time.Time {
	t.Helper()
	done := make(chan time.Time, 1)
	go func() { done <- e.Next(from) }()
	select {
	case v := <-done:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: Next(%s) did not return in 5 s", e, from)
		return time.Time{}
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"", "3:00 am", "24:00", "60 * * * *", "* * * *", "0 3 * * * *", "5-1 * * * *",
		"*/0 * * * *", "@reboot", "0 3 32 * *", "0 3 * foo *"} {
		if _, err := ParseAt(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
	// Cron reads the @aliases in lowercase only.
	if e, err := ParseAt("@Daily"); err != nil || e.String() != "@daily" {
		t.Errorf("@Daily -> %q, %v", e, err)
	}
	if e, err := ParseAt("3:05"); err != nil || e.String() != "5 3 * * *" {
		t.Errorf("3:05 -> %q, %v", e, err)
	}
}
