// Package version is the tool's version, in one place: the manifest records it and
// `docker info` shows it. Set it at build time with
// -ldflags "-X github.com/echo-backup/echo-backup/version.Version=…" (scripts/install.sh).
package version

// Version is the release, or 0.1.0-dev for a build from a checkout.
var Version = "0.1.0-dev"
