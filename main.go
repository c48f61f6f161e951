// Command docker-echobackup is the Docker CLI plugin that backs up an Echo deployment.
package main

import (
	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli-plugins/plugin"

	echoplugin "github.com/echo-backup/echo-backup/plugin"
)

func main() {
	plugin.Run(echoplugin.NewRootCommand, metadata.Metadata{
		SchemaVersion:    "0.1.0",
		Vendor:           "echo-backup",
		Version:          echoplugin.Version,
		ShortDescription: "Save, verify and restore an Echo music-server deployment",
	})
}
