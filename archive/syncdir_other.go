//go:build !unix

package archive

// syncDir is a no-op where folders cannot be fsynced (Windows).
func syncDir(string) error { return nil }
