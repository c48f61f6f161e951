// Package ping is the scheduled run's dead-man's switch: HTTP pings in the style of
// healthchecks.io, retried a few times, with the URL (the secret) kept out of every error. It
// is its own package so that schedule, and hooks above it, do not carry net/http.
package ping

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Ping is a dead-man's switch in the style of healthchecks.io: URL/start when a run begins,
// URL when it succeeded, URL/fail when it failed, the last two with the run's summary or error
// as the body. The service raises the alarm when a success does not arrive in time, so even a
// run that never starts is noticed.
type Ping struct {
	URL    string
	Client *http.Client // nil: a client with a 10 s timeout
	// Tries per ping; 0 means 3. A ping is worth a few retries, never a failed backup.
	Tries int
	Wait  time.Duration // between tries; 0 means 2 s
}

// Start tells the service a run has begun, so it can also measure how long runs take.
func (p Ping) Start(ctx context.Context) error { return p.send(ctx, http.MethodGet, "/start", "") }

// Success reports a run that saved, verified and pruned.
func (p Ping) Success(ctx context.Context, summary string) error {
	return p.send(ctx, http.MethodPost, "", summary)
}

// Fail reports a run that failed, with the error.
func (p Ping) Fail(ctx context.Context, msg string) error {
	return p.send(ctx, http.MethodPost, "/fail", msg)
}

func (p Ping) send(ctx context.Context, method, suffix, body string) error {
	if p.URL == "" {
		return nil
	}
	u, err := url.Parse(p.URL)
	if err != nil {
		return fmt.Errorf("the ping URL is not valid: %w", withoutURL(err))
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + suffix
	client, tries, wait := p.Client, p.Tries, p.Wait
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if tries <= 0 {
		tries = 3
	}
	if wait <= 0 {
		wait = 2 * time.Second
	}
	for i := 1; ; i++ {
		err = p.once(ctx, client, method, u.String(), body)
		if err == nil || i == tries {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pinging %s: %w", Redact(u.String()), ctx.Err())
		case <-time.After(wait):
		}
	}
	if err != nil {
		return fmt.Errorf("pinging %s: %w", Redact(u.String()), err)
	}
	return nil
}

func (p Ping) once(ctx context.Context, client *http.Client, method, target, body string) error {
	req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
	if err != nil {
		return withoutURL(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	resp, err := client.Do(req)
	if err != nil {
		return withoutURL(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

// withoutURL drops the URL that net/url and net/http put in their errors: the message goes to
// the log, and the URL is the secret.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Redact hides a ping URL's path and query: with healthchecks.io the check's UUID is the only
// key, so whoever sees it can send false all-clears.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(ping URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}
