// Package hooks registers the plugin's Docker CLI hooks in the docker config file and writes
// the hint the CLI shows after a command that deletes volumes. The hint reads backup
// manifests only (package store): the CLI waits for it, and it must never reach the engine.
package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Plugin is the plugin's name, the key of its settings in the config file.
const Plugin = "echobackup"

// Commands are the commands after which the CLI asks the plugin for a hint.
var Commands = []string{"compose down", "volume rm", "volume prune", "system prune"}

// Install turns hooks on in the config file at path and adds the plugin's commands to its
// hook list, keeping everything else in the file. It reports whether it changed anything.
func Install(path string) (bool, error) {
	return edit(path, func(cfg map[string]json.RawMessage) error {
		features, err := stringMap(cfg, "features")
		if err != nil {
			return err
		}
		features["hooks"] = "true"
		plugins, err := pluginsMap(cfg)
		if err != nil {
			return err
		}
		own := plugins[Plugin]
		if own == nil {
			own = map[string]string{}
		}
		list := splitHooks(own["hooks"])
		for _, c := range Commands {
			if !slices.Contains(list, c) {
				list = append(list, c)
			}
		}
		own["hooks"] = strings.Join(list, ",")
		plugins[Plugin] = own
		return setAll(cfg, features, plugins)
	})
}

// Remove takes the plugin's commands out of its hook list. Hooks stay on while another
// plugin still has some.
func Remove(path string) (bool, error) {
	return edit(path, func(cfg map[string]json.RawMessage) error {
		plugins, err := pluginsMap(cfg)
		if err != nil {
			return err
		}
		features, err := stringMap(cfg, "features")
		if err != nil {
			return err
		}
		if own := plugins[Plugin]; own != nil {
			list := slices.DeleteFunc(splitHooks(own["hooks"]), func(c string) bool { return slices.Contains(Commands, c) })
			own["hooks"] = strings.Join(list, ",")
			if len(list) == 0 {
				delete(own, "hooks")
			}
			if len(own) == 0 {
				delete(plugins, Plugin)
			}
		}
		if !anyHooks(plugins) {
			delete(features, "hooks")
		}
		return setAll(cfg, features, plugins)
	})
}

// Installed tells whether the config file at path turns the plugin's hooks on.
func Installed(path string) (bool, error) {
	cfg, err := read(path)
	if err != nil {
		return false, err
	}
	features, err := stringMap(cfg, "features")
	if err != nil {
		return false, err
	}
	plugins, err := pluginsMap(cfg)
	if err != nil {
		return false, err
	}
	list := splitHooks(plugins[Plugin]["hooks"])
	for _, c := range Commands {
		if !slices.Contains(list, c) {
			return false, nil
		}
	}
	return features["hooks"] == "true", nil
}

func anyHooks(plugins map[string]map[string]string) bool {
	for _, p := range plugins {
		if p["hooks"] != "" || p["error-hooks"] != "" {
			return true
		}
	}
	return false
}

func splitHooks(s string) []string {
	var out []string
	for _, c := range strings.Split(s, ",") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// edit reads the file as raw JSON so that keys this package does not know survive, applies
// change and writes the file back only if it changed.
func edit(path string, change func(map[string]json.RawMessage) error) (bool, error) {
	cfg, err := read(path)
	if err != nil {
		return false, err
	}
	before, err := encode(cfg)
	if err != nil {
		return false, err
	}
	if err := change(cfg); err != nil {
		return false, fmt.Errorf("editing %s: %w", path, err)
	}
	after, err := encode(cfg)
	if err != nil {
		return false, err
	}
	if bytes.Equal(before, after) {
		return false, nil
	}
	return true, writeAtomic(path, after)
}

func read(path string) (map[string]json.RawMessage, error) {
	cfg := map[string]json.RawMessage{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the docker config: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return cfg, nil
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("reading the docker config %s: %w", path, err)
	}
	return cfg, nil
}

func encode(cfg map[string]json.RawMessage) ([]byte, error) {
	b, err := json.MarshalIndent(cfg, "", "\t")
	return append(b, '\n'), err
}

func stringMap(cfg map[string]json.RawMessage, key string) (map[string]string, error) {
	m := map[string]string{}
	if raw, ok := cfg[key]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%q is not a map of strings: %w", key, err)
		}
	}
	return m, nil
}

func pluginsMap(cfg map[string]json.RawMessage) (map[string]map[string]string, error) {
	m := map[string]map[string]string{}
	if raw, ok := cfg["plugins"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf(`"plugins" is not a map of plugin settings: %w`, err)
		}
	}
	return m, nil
}

// setAll stores features and plugins back, leaving out what became empty.
func setAll(cfg map[string]json.RawMessage, features map[string]string, plugins map[string]map[string]string) error {
	for key, v := range map[string]any{"features": features, "plugins": plugins} {
		if isEmpty(v) {
			delete(cfg, key)
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		cfg[key] = b
	}
	return nil
}

func isEmpty(v any) bool {
	switch m := v.(type) {
	case map[string]string:
		return len(m) == 0
	case map[string]map[string]string:
		return len(m) == 0
	}
	return false
}

// writeAtomic replaces the file (or what a symlink points to) in one rename, keeping its
// mode; the docker CLI itself may read it at any moment.
func writeAtomic(path string, data []byte) error {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating the docker config folder: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config.json.*")
	if err != nil {
		return fmt.Errorf("writing the docker config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the docker config: %w", err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing the docker config %s: %w", path, err)
	}
	return nil
}
