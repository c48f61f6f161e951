package retention

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// now is the day after the newest of sixtyDays.
var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// sixtyDays is one backup a night at 03:00 UTC from 2026-09-27 to 2026-11-25, newest last.
func sixtyDays() []Item {
	newest := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	var items []Item
	for i := 59; i >= 0; i-- {
		t := newest.AddDate(0, 0, -i)
		items = append(items, Item{Name: t.Format("2006-01-02"), Created: t})
	}
	return items
}

func kept(ds []Decision) []string {
	var names []string
	for _, d := range ds {
		if d.Keep {
			names = append(names, d.Name)
		}
	}
	sort.Strings(names)
	return names
}

func reasons(ds []Decision) map[string]string {
	m := map[string]string{}
	for _, d := range ds {
		m[d.Name] = strings.Join(d.Reasons, ", ")
	}
	return m
}

func TestSixtyDailies(t *testing.T) {
	ds := Apply(sixtyDays(), Policy{Daily: 7, Weekly: 4, Monthly: 3}, now)
	// 2026-11-25 is a Wednesday in ISO week 48; the Sundays before end weeks 47, 46, 45.
	want := []string{"2026-09-30", "2026-10-31", "2026-11-08", "2026-11-15",
		"2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25"}
	if got := kept(ds); !reflect.DeepEqual(got, want) {
		t.Fatalf("kept %v\nwant %v", got, want)
	}
	r := reasons(ds)
	for name, why := range map[string]string{
		"2026-11-25": "daily 2026-11-25, weekly 2026-W48, monthly 2026-11",
		"2026-11-22": "daily 2026-11-22, weekly 2026-W47",
		"2026-10-31": "monthly 2026-10",
		"2026-11-18": "outside the policy",
	} {
		if r[name] != why {
			t.Errorf("%s: reasons %q, want %q", name, r[name], why)
		}
	}
	if ds[0].Name != "2026-11-25" {
		t.Errorf("decisions not newest first: %s", ds[0].Name)
	}
}

func TestLastCountsEveryBackup(t *testing.T) {
	base := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	var items []Item
	for i := 0; i < 5; i++ { // five the same day
		items = append(items, Item{Name: fmt.Sprint(i), Created: base.Add(time.Duration(i) * time.Hour)})
	}
	if got := kept(Apply(items, Policy{Last: 2}, now)); !reflect.DeepEqual(got, []string{"3", "4"}) {
		t.Errorf("keep-last 2 kept %v", got)
	}
	// Daily keeps the newest of the day only.
	if got := kept(Apply(items, Policy{Daily: 3}, now)); !reflect.DeepEqual(got, []string{"4"}) {
		t.Errorf("keep-daily 3 on one day kept %v", got)
	}
}

// Periods are counted in the given zone: 23:30 UTC is the next day in Berlin.
func TestZone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no zoneinfo:", err)
	}
	items := []Item{
		{Name: "a", Created: time.Date(2026, 6, 1, 21, 0, 0, 0, time.UTC)},
		{Name: "b", Created: time.Date(2026, 6, 1, 23, 30, 0, 0, time.UTC)},
	}
	if got := kept(Apply(items, Policy{Daily: 5}, now)); !reflect.DeepEqual(got, []string{"b"}) {
		t.Errorf("UTC kept %v", got)
	}
	if got := kept(Apply(items, Policy{Daily: 5}, now.In(berlin))); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Berlin kept %v", got)
	}
}

func TestPinnedAndNewestVerifiedStay(t *testing.T) {
	items := sixtyDays()
	items[3].Pinned = "pre-restore"                    // 2026-09-30
	items[10].Verified, items[5].Verified = true, true // only the newer (10) is protected
	ds := Apply(items, Policy{Last: 1}, now)
	want := []string{items[3].Name, items[10].Name, "2026-11-25"}
	sort.Strings(want)
	if got := kept(ds); !reflect.DeepEqual(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	r := reasons(ds)
	if r[items[3].Name] != "pinned (pre-restore)" || r[items[10].Name] != "newest verified" || r[items[5].Name] != "outside the policy" {
		t.Errorf("reasons %v", r)
	}
}

func TestCheck(t *testing.T) {
	if err := (Policy{}).Check(); err == nil {
		t.Error("an empty policy passed")
	}
	if err := (Policy{Daily: -1, Last: 3}).Check(); err == nil {
		t.Error("a negative count passed")
	}
	if err := Default.Check(); err != nil {
		t.Error(err)
	}
}

func TestEmpty(t *testing.T) {
	if ds := Apply(nil, Default, now); len(ds) != 0 {
		t.Errorf("decisions for nothing: %v", ds)
	}
}

// A backup dated years ahead (a wrong clock) is kept, warned about, and takes no period: the
// real days keep all their slots, and the newest verified is a real one.
func TestFutureTakesNoSlot(t *testing.T) {
	items := append(sixtyDays(), Item{Name: "2029", Created: time.Date(2029, 1, 1, 3, 0, 0, 0, time.UTC), Verified: true})
	items[50].Verified = true // 2026-11-16
	ds := Apply(items, Policy{Last: 1, Daily: 7}, now)
	want := []string{"2026-11-16", "2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25", "2029"}
	if got := kept(ds); !reflect.DeepEqual(got, want) {
		t.Fatalf("kept %v\nwant %v", got, want)
	}
	r := reasons(ds)
	if r["2029"] != ReasonFuture || r["2026-11-25"] != "last 1 of 1, daily 2026-11-25" || r["2026-11-16"] != "newest verified" {
		t.Errorf("reasons: 2029 %q, 2026-11-25 %q, 2026-11-16 %q", r["2029"], r["2026-11-25"], r["2026-11-16"])
	}
	if !ds[0].Future || ds[1].Future {
		t.Errorf("future flags: %v %v", ds[0].Future, ds[1].Future)
	}
	// A few seconds ahead is a clock that was stepped back, not a future backup.
	soon := []Item{{Name: "just taken", Created: now.Add(time.Minute)}}
	if ds := Apply(soon, Policy{Daily: 1}, now); ds[0].Future || ds[0].Reasons[0] != "daily 2026-11-26" {
		t.Errorf("a backup a minute ahead: %+v", ds[0])
	}
}
