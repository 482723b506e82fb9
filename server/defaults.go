package server

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/arbor-db/arbor/client/wire"
)

const (
	// readBufferSize is each connection's WebSocket read buffer.
	readBufferSize = 512
	// defaultSessionMs is the timeout of a hello that asks for none.
	defaultSessionMs = 10000
	// drainTimeout bounds how long a connection closed for an oversized
	// frame keeps reading, so the client gets the close frame.
	drainTimeout = time.Second
	// transferTimeout bounds the leadership hand-over on shutdown.
	transferTimeout = 2 * time.Second
)

// Errors.
var (
	// ErrConfig is returned by Run for an invalid Config.
	ErrConfig = errors.New("server: invalid config")

	errShuttingDown = errors.New("server: shutting down")
)

// withDefaults returns cfg with every zero optional field set.
func (cfg Config) withDefaults() Config {
	if cfg.ClientAddr == "" {
		cfg.ClientAddr = "127.0.0.1:7400"
	}
	if cfg.PeerAddr == "" {
		cfg.PeerAddr = "127.0.0.1:7401"
	}
	if cfg.PeerListener != nil {
		cfg.PeerAddr = cfg.PeerListener.Addr().String()
	}
	if cfg.AdvertisePeerAddr == "" {
		cfg.AdvertisePeerAddr = cfg.PeerAddr
	}
	setDefault(&cfg.MaxFrameBytes, wire.DefaultMaxFrame)
	setDefault(&cfg.MaxDataBytes, wire.DefaultMaxData)
	setDefault(&cfg.MaxPathBytes, wire.DefaultMaxPath)
	setDefault(&cfg.MinSessionMs, 2000)
	setDefault(&cfg.MaxSessionMs, 60000)
	setDefault(&cfg.SnapshotEntries, 100000)
	setDefault(&cfg.RequestTimeout, 5*time.Second)
	setDefault(&cfg.TickInterval, 50*time.Millisecond)
	setDefault(&cfg.MaxConnections, 110000)
	setDefault(&cfg.MaxProposals, 4096)
	setDefault(&cfg.RenewInterval, 100*time.Millisecond)
	setDefault(&cfg.ReapInterval, time.Second)
	setDefault(&cfg.MaxSessions, 100000)
	setDefault(&cfg.MaxEphemeralsPerSession, 100000)
	setDefault(&cfg.MaxPendingPerConn, 256)
	setDefault(&cfg.MaxWatchesPerSession, defaultMaxWatchesPerSession)
	setDefault(&cfg.WatchHistoryEvents, defaultHistoryEvents)
	setDefault(&cfg.WatchHistoryBytes, defaultHistoryBytes)
	setDefault(&cfg.MaxQueuedEvents, defaultMaxQueuedEvents)
	setDefault(&cfg.MaxQueuedEventBytes, defaultMaxQueuedEventBytes)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// validate reports the first problem with a defaulted config.
func (cfg *Config) validate() error {
	switch {
	case cfg.Name == "":
		return fmt.Errorf("%w: a member name is required", ErrConfig)
	case cfg.DataDir == "":
		return fmt.Errorf("%w: a data directory is required", ErrConfig)
	case cfg.MinSessionMs > cfg.MaxSessionMs:
		return fmt.Errorf("%w: min session timeout %dms is over the max %dms", ErrConfig, cfg.MinSessionMs, cfg.MaxSessionMs)
	case cfg.MaxDataBytes > cfg.MaxFrameBytes:
		return fmt.Errorf("%w: max data %d bytes does not fit in a frame of %d bytes", ErrConfig, cfg.MaxDataBytes, cfg.MaxFrameBytes)
	case cfg.MaxFrameBytes < 0 || cfg.MaxDataBytes < 0 || cfg.MaxPathBytes < 0 ||
		cfg.MaxSessions < 0 || cfg.MaxEphemeralsPerSession < 0 || cfg.MaxPendingPerConn < 0 ||
		cfg.MaxWatchesPerSession < 0 || cfg.WatchHistoryEvents < 0 || cfg.WatchHistoryBytes < 0 ||
		cfg.MaxQueuedEvents < 0 || cfg.MaxQueuedEventBytes < 0:
		return fmt.Errorf("%w: limits must not be negative", ErrConfig)
	case cfg.MinSessionMs < 1000:
		return fmt.Errorf("%w: min session timeout %dms is under 1000ms", ErrConfig, cfg.MinSessionMs)
	case cfg.RenewInterval < 0 || 4*cfg.RenewInterval > time.Duration(cfg.MinSessionMs)*time.Millisecond:
		return fmt.Errorf("%w: renew interval %v must be positive and at most a quarter of the min session timeout %dms", ErrConfig, cfg.RenewInterval, cfg.MinSessionMs)
	case cfg.TickInterval < 0 || cfg.ReapInterval < 0:
		return fmt.Errorf("%w: tick interval %v and reap interval %v must be positive", ErrConfig, cfg.TickInterval, cfg.ReapInterval)
	case cfg.Version > currentClusterVersion:
		return fmt.Errorf("%w: version %d is above this release's %d", ErrConfig, cfg.Version, currentClusterVersion)
	}
	return nil
}

// writeTimeout bounds one frame write: a client that stops reading for
// this long is disconnected instead of holding its writer forever.
func (cfg *Config) writeTimeout() time.Duration {
	return max(2*cfg.RequestTimeout, 10*time.Second)
}
