package lincheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// SaveHistory writes h as JSON (one Op per line) to DIR/name.jsonl, DIR
// being $ARBOR_LINCHECK_DIR if set, else dir, and returns the file's path.
func SaveHistory(h []Op, dir, name string) (string, error) {
	if d := os.Getenv(VisualizationDirEnv); d != "" {
		dir = d
	}
	path := filepath.Join(dir, name+".jsonl")
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("lincheck: save history: %w", err)
	}
	enc := json.NewEncoder(f)
	for _, o := range h {
		if err := enc.Encode(o); err != nil {
			f.Close()
			return "", fmt.Errorf("lincheck: save history: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("lincheck: save history: %w", err)
	}
	return path, nil
}

// LoadHistory reads a history written by SaveHistory.
func LoadHistory(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("lincheck: load history: %w", err)
	}
	defer f.Close()
	var h []Op
	dec := json.NewDecoder(f)
	for dec.More() {
		var o Op
		if err := dec.Decode(&o); err != nil {
			return nil, fmt.Errorf("lincheck: load history: %w", err)
		}
		h = append(h, o)
	}
	return h, nil
}
