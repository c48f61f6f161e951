package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/docker/cli/cli"
	"github.com/docker/go-units"

	"github.com/echo-backup/echo-backup/compose"
)

// exitUsage is for bad flags or arguments, or a project that cannot be used as given; a failed
// operation exits 1, the docker CLI's default for an error.
const exitUsage = 2

const (
	formatTable = "table"
	formatJSON  = "json"
)

func checkFormat(format string) error {
	if format != formatTable && format != formatJSON {
		return cli.StatusError{StatusCode: exitUsage, Status: fmt.Sprintf("--format must be %q or %q, not %q", formatTable, formatJSON, format)}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// userError turns a mistake the user can fix into a one-line message with the usage exit code.
func userError(err error) error {
	if err != nil && compose.IsUserError(err) {
		return cli.StatusError{StatusCode: exitUsage, Status: err.Error()}
	}
	return err
}

func humanSize(n int64) string {
	if n <= 0 {
		return "-"
	}
	return units.HumanSizeWithPrecision(float64(n), 3)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
