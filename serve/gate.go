package serve

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errBusy is returned by the gate when the server cannot take or keep a
// request waiting (answered 503 with Retry-After).
var errBusy = errors.New("the server is busy")

// gate bounds the work of the server: at most maxUploads requests read
// their bodies at once, at most slots analyses run at once, and at most
// slots+queue requests whose upload is complete are admitted (waiting or
// running). Uploads do not hold an admission place, so clients that send
// slowly cannot keep others from being served. It is safe for concurrent
// use.
type gate struct {
	uploads chan struct{} // requests reading their body
	tickets chan struct{} // admitted requests
	slots   chan struct{} // running analyses

	mu      sync.Mutex
	waiting int // admitted requests waiting for a slot
}

func newGate(slots, queue, maxUploads int) *gate {
	return &gate{uploads: make(chan struct{}, maxUploads), tickets: make(chan struct{}, slots+queue), slots: make(chan struct{}, slots)}
}

// full reports whether every admission place is taken (a request arriving
// now would be turned away once its upload is read).
func (g *gate) full() bool { return len(g.tickets) == cap(g.tickets) }

// startUpload takes an upload place without waiting; false when too many
// requests are reading their body. A true result must be paired with
// endUpload.
func (g *gate) startUpload() bool {
	select {
	case g.uploads <- struct{}{}:
		return true
	default:
		return false
	}
}

// endUpload returns an upload place.
func (g *gate) endUpload() { <-g.uploads }

// uploading returns the number of requests reading their body.
func (g *gate) uploading() int { return len(g.uploads) }

// admit takes a ticket without waiting; false when the server is full.
// A true result must be paired with leave.
func (g *gate) admit() bool {
	select {
	case g.tickets <- struct{}{}:
		return true
	default:
		return false
	}
}

// leave returns an admitted request's ticket.
func (g *gate) leave() { <-g.tickets }

// acquire waits up to wait for an analysis slot. It returns errBusy when
// the wait ran out and ctx.Err() when ctx ended first. A nil result must be
// paired with release.
func (g *gate) acquire(ctx context.Context, wait time.Duration) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	g.mu.Lock()
	g.waiting++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release frees an analysis slot.
func (g *gate) release() { <-g.slots }

// load returns the number of running analyses, of requests waiting for a
// slot and of admitted requests.
func (g *gate) load() (running, waiting, admitted int) {
	g.mu.Lock()
	waiting = g.waiting
	g.mu.Unlock()
	return len(g.slots), waiting, len(g.tickets)
}
