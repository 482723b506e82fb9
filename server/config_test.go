package server

import (
	"errors"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name  string
		tweak func(*Config)
		ok    bool
	}{
		{"defaults", func(*Config) {}, true},
		{"no name", func(c *Config) { c.Name = "" }, false},
		{"negative limit", func(c *Config) { c.MaxSessions = -1 }, false},
		{"negative tick", func(c *Config) { c.TickInterval = -time.Millisecond }, false},
		{"negative reap interval", func(c *Config) { c.ReapInterval = -time.Second }, false},
		{"renew interval over a quarter of the min session", func(c *Config) { c.RenewInterval = time.Second }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Name: "m1", DataDir: t.TempDir()}
			tt.tweak(&cfg)
			cfg = cfg.withDefaults()
			err := cfg.validate()
			if tt.ok != (err == nil) || err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("validate: %v, want ok %t (or an ErrConfig)", err, tt.ok)
			}
		})
	}
}
