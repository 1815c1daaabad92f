// Package progress draws a progress bar with rate and ETA on a terminal
// (stderr), and prints occasional plain lines when the output is not a
// terminal (logs, CI).
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar reports progress of a job of known (or unknown, total <= 0) size.
// It is safe for concurrent use.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	label    string
	unit     string
	total    int64
	done     int64
	start    time.Time
	last     time.Time
	every    time.Duration
	suffix   string
	finished bool
}

// New returns a bar writing to stderr. unit names what is counted ("img",
// "frames", "steps").
func New(label string, total int64, unit string) *Bar {
	return NewTo(os.Stderr, isTerminal(os.Stderr), label, total, unit)
}

// NewTo returns a bar writing to w; tty selects redrawing in place.
func NewTo(w io.Writer, tty bool, label string, total int64, unit string) *Bar {
	every := 200 * time.Millisecond
	if !tty {
		every = 10 * time.Second
	}
	now := time.Now()
	return &Bar{w: w, tty: tty, label: label, unit: unit, total: total, start: now, every: every}
}

// Quiet returns a bar that draws nothing.
func Quiet() *Bar { return &Bar{w: io.Discard, every: time.Hour, start: time.Now()} }

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	if err != nil {
		return false
	}
	return st.Mode()&os.ModeCharDevice != 0
}

// Add advances the bar by n.
func (b *Bar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if now := time.Now(); now.Sub(b.last) >= b.every {
		b.last = now
		b.draw(now)
	}
}

// SetDone sets the absolute count (for resumed jobs).
func (b *Bar) SetDone(n int64) {
	b.mu.Lock()
	b.done = n
	b.mu.Unlock()
}

// SetSuffix sets text shown after the rate (loss, accuracy, ...).
func (b *Bar) SetSuffix(format string, args ...any) {
	b.mu.Lock()
	b.suffix = fmt.Sprintf(format, args...)
	b.mu.Unlock()
}

// Finish draws the final state and ends the line.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.finished = true
	b.draw(time.Now())
	if b.tty {
		fmt.Fprintln(b.w)
	}
}

// Line renders the bar's current text (without drawing it).
func (b *Bar) Line() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.render(time.Now())
}

func (b *Bar) render(now time.Time) string {
	el := now.Sub(b.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(b.done) / el
	}
	var sb strings.Builder
	sb.WriteString(b.label)
	if b.total > 0 {
		frac := float64(b.done) / float64(b.total)
		if frac > 1 {
			frac = 1
		}
		const width = 24
		fill := int(frac * width)
		sb.WriteString(" [")
		sb.WriteString(strings.Repeat("=", fill))
		if fill < width {
			sb.WriteString(">")
			sb.WriteString(strings.Repeat(" ", width-fill-1))
		}
		fmt.Fprintf(&sb, "] %d/%d %3.0f%%", b.done, b.total, 100*frac)
	} else {
		fmt.Fprintf(&sb, " %d", b.done)
	}
	fmt.Fprintf(&sb, " %.2f %s/s", rate, b.unit)
	if b.total > 0 && rate > 0 && b.done < b.total {
		eta := time.Duration(float64(b.total-b.done) / rate * float64(time.Second))
		fmt.Fprintf(&sb, " ETA %s", fmtDur(eta))
	} else {
		fmt.Fprintf(&sb, " in %s", fmtDur(now.Sub(b.start)))
	}
	if b.suffix != "" {
		sb.WriteString(" ")
		sb.WriteString(b.suffix)
	}
	return sb.String()
}

func (b *Bar) draw(now time.Time) {
	line := b.render(now)
	if b.tty {
		fmt.Fprintf(b.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(b.w, line)
	}
}

func fmtDur(d time.Duration) string {
	d = d.Round(time.Second)
	h := int(d.Hours())
	m := int(d.Minutes()) % 60
	s := int(d.Seconds()) % 60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}
