package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Result is one measured run. The JSON names are the stable output of
// `arbor bench --json` and of the comparison matrix.
type Result struct {
	System    string  `json:"system"`
	Workload  string  `json:"workload"`
	Clients   int     `json:"clients"`
	Ops       int64   `json:"ops"` // successful operations
	OpsPerSec float64 `json:"ops_per_sec"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	Errors    int64   `json:"errors"` // failed operations plus failed checks

	ValueSize  int     `json:"value_size,omitempty"`
	ElapsedSec float64 `json:"elapsed_s,omitempty"`
	FirstError string  `json:"first_error,omitempty"`

	// Sessions: resident memory summed over the members, before opening
	// the sessions and with all of them open (0 when unknown).
	MemBeforeBytes uint64 `json:"mem_before_bytes,omitempty"`
	MemAfterBytes  uint64 `json:"mem_after_bytes,omitempty"`

	// Sessions --hold: each member's cost over the hold.
	HoldSec float64      `json:"hold_s,omitempty"`
	Members []MemberCost `json:"members,omitempty"`
	// Sessions --hold and failover: sessions whose ephemeral was gone at
	// the end (expired while their client was alive).
	SessionsLost int `json:"sessions_lost,omitempty"`
	// Elect-failover: the killed candidate's session timeout, which bounds
	// the time to the next election from below.
	SessionTimeoutMs float64 `json:"session_timeout_ms,omitempty"`

	// Watch: Clients sessions hold Watchers watches (WatchMode) of one
	// node written Writes times at Rate a second (0: back to back). Ops
	// and the latencies are the events, timed from the write's ack; an
	// event that came before the writer heard the ack counts as 0 ms
	// (EventsBeforeAck). EventsExpected is Writes times Watchers; missed
	// events are those of acknowledged writes no event reported.
	// Set-watched: Watchers recursive watches of / held over the run, and
	// the events they got.
	Watchers        int     `json:"watchers,omitempty"`
	WatchMode       string  `json:"watch_mode,omitempty"`
	Rate            float64 `json:"rate,omitempty"`
	Writes          int64   `json:"writes,omitempty"`
	EventsExpected  int64   `json:"events_expected,omitempty"`
	EventsDelivered int64   `json:"events_delivered,omitempty"`
	EventsMissed    int64   `json:"events_missed,omitempty"`
	EventsBeforeAck int64   `json:"events_before_ack,omitempty"`
	// Watch-memory: the members' live heap (Env.Heap) before and after
	// setting the watches, and the length of each watched path.
	HeapBeforeBytes uint64 `json:"heap_before_bytes,omitempty"`
	HeapAfterBytes  uint64 `json:"heap_after_bytes,omitempty"`
	PathBytes       int    `json:"path_bytes,omitempty"`
	// Watch: the events' latency from the write's request instead.
	P50FromWriteMs float64 `json:"p50_from_write_ms,omitempty"`
	P99FromWriteMs float64 `json:"p99_from_write_ms,omitempty"`
}

// fill sets the throughput and latency fields from a histogram.
func (r *Result) fill(h *Histogram, elapsed time.Duration) {
	r.Ops = int64(h.Count())
	r.ElapsedSec = elapsed.Seconds()
	if elapsed > 0 {
		r.OpsPerSec = float64(r.Ops) / elapsed.Seconds()
	}
	r.P50Ms = ms(h.Quantile(0.50))
	r.P99Ms = ms(h.Quantile(0.99))
	r.MaxMs = ms(h.Max())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteJSON writes each result as one JSON object a line.
func WriteJSON(w io.Writer, results ...Result) error {
	enc := json.NewEncoder(w)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("bench: writing result: %w", err)
		}
	}
	return nil
}

// WriteTable writes results as a human table.
func WriteTable(w io.Writer, results ...Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SYSTEM\tWORKLOAD\tCLIENTS\tOPS\tOPS/S\tP50 MS\tP99 MS\tMAX MS\tERRORS\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%.3f\t%.3f\t%.3f\t%d\t\n",
			r.System, r.Workload, r.Clients, r.Ops, r.OpsPerSec, r.P50Ms, r.P99Ms, r.MaxMs, r.Errors)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("bench: writing table: %w", err)
	}
	for _, r := range results {
		if r.MemAfterBytes > 0 && r.Workload == "sessions" {
			fmt.Fprintf(w, "%s %s: member memory %.1f MiB before, %.1f MiB with %d sessions open\n",
				r.System, r.Workload, mib(r.MemBeforeBytes), mib(r.MemAfterBytes), r.Ops)
		}
		for _, m := range r.Members {
			role := "follower"
			if m.Leader {
				role = "leader"
			}
			fmt.Fprintf(w, "%s %s: member %s (%s, holds %d sessions): %.0f B RSS and %.0f B Go memory per session, %.3f cores while idle for %.0f s\n",
				r.System, r.Workload, m.Addr, role, m.Sessions, m.RSSPerSession, m.GoPerSession, m.CPUCoresWhileIdle, r.HoldSec)
		}
		if r.Workload == "failover" || r.HoldSec > 0 {
			fmt.Fprintf(w, "%s %s: sessions lost (expired while their client lived): %d\n", r.System, r.Workload, r.SessionsLost)
		}
		if r.Workload == "elect-failover" && r.Ops > 0 {
			fmt.Fprintf(w, "%s %s: next candidate elected %.0f ms (p50; max %.0f ms) after kill -9 of the leader's process, whose session timeout was %.0f ms\n",
				r.System, r.Workload, r.P50Ms, r.MaxMs, r.SessionTimeoutMs)
		}
		if r.Workload == "watch-memory" && r.Watchers > 0 {
			fmt.Fprintf(w, "%s watch-memory: %d %s watches on paths of %d bytes: %s B RSS and %s B heap per watch\n",
				r.System, r.Watchers, r.WatchMode, r.PathBytes, perWatch(r.MemBeforeBytes, r.MemAfterBytes, r.Watchers), perWatch(r.HeapBeforeBytes, r.HeapAfterBytes, r.Watchers))
		}
		if r.Workload == "watch" {
			fmt.Fprintf(w, "%s watch: %d %s watches over %d sessions, %d writes at %.0f/s: %d of %d events delivered (%d missed, %d before the ack); from the write's request p50 %.3f ms, p99 %.3f ms\n",
				r.System, r.Watchers, r.WatchMode, r.Clients, r.Writes, r.Rate, r.EventsDelivered, r.EventsExpected, r.EventsMissed, r.EventsBeforeAck, r.P50FromWriteMs, r.P99FromWriteMs)
		}
		if r.FirstError != "" {
			fmt.Fprintf(w, "%s %s: first error: %s\n", r.System, r.Workload, r.FirstError)
		}
	}
	return nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// perWatch is the memory added per watch, or "?" when unknown.
func perWatch(before, after uint64, n int) string {
	if after == 0 || n == 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f", (float64(after)-float64(before))/float64(n))
}
