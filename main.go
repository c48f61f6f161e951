// Command docker-echobackup is the Docker CLI plugin that backs up an Echo deployment.
package main

import (
	"os"
	"runtime/debug"

	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli-plugins/plugin"

	echoplugin "github.com/echo-backup/echo-backup/plugin"
	"github.com/echo-backup/echo-backup/version"
)

// memoryLimit keeps the heap near what a backup really holds (zstd windows and I/O buffers, about
// 30 MB): without it the collector lets the heap double, and a save on a small server would
// take 100 MB for nothing. GOMEMLIMIT still wins.
const memoryLimit = 40 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	plugin.Run(echoplugin.NewRootCommand, metadata.Metadata{
		SchemaVersion:    "0.1.0",
		Vendor:           "echo-backup",
		Version:          version.Version,
		ShortDescription: "Save, verify and restore an Echo music-server deployment",
	})
}
