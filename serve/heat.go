package serve

import (
	"container/list"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"time"
)

// pngDataURL is the prefix of the heatmaps the analyzer returns inline.
const pngDataURL = "data:image/png;base64,"

// heatStore keeps heatmap PNGs in memory for a while so that results can
// link to them (GET /v1/heatmaps/TOKEN.png) instead of inlining them. It
// holds at most maxBytes, evicting the oldest, and forgets entries older
// than ttl. Tokens are random: nothing from the client names a file. It is
// safe for concurrent use.
type heatStore struct {
	mu       sync.Mutex
	maxBytes int64
	ttl      time.Duration
	bytes    int64
	order    *list.List // of *heatEntry, oldest first
	byToken  map[string]*list.Element
}

type heatEntry struct {
	token string
	png   []byte
	at    time.Time
}

func newHeatStore(maxBytes int64, ttl time.Duration) *heatStore {
	return &heatStore{maxBytes: maxBytes, ttl: ttl, order: list.New(), byToken: map[string]*list.Element{}}
}

// put stores png and returns its token ("" when it is larger than the
// whole store).
func (h *heatStore) put(png []byte) string {
	if int64(len(png)) > h.maxBytes {
		return ""
	}
	var raw [16]byte
	rand.Read(raw[:])
	tok := hex.EncodeToString(raw[:])
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire(now)
	for h.bytes+int64(len(png)) > h.maxBytes && h.order.Len() > 0 {
		h.remove(h.order.Front())
	}
	h.byToken[tok] = h.order.PushBack(&heatEntry{token: tok, png: png, at: now})
	h.bytes += int64(len(png))
	return tok
}

// get returns the PNG of a token, if it is still kept.
func (h *heatStore) get(tok string) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire(time.Now())
	el, ok := h.byToken[tok]
	if !ok {
		return nil, false
	}
	return el.Value.(*heatEntry).png, true
}

func (h *heatStore) expire(now time.Time) {
	for el := h.order.Front(); el != nil && now.Sub(el.Value.(*heatEntry).at) > h.ttl; el = h.order.Front() {
		h.remove(el)
	}
}

func (h *heatStore) remove(el *list.Element) {
	e := h.order.Remove(el).(*heatEntry)
	delete(h.byToken, e.token)
	h.bytes -= int64(len(e.png))
}

// heatmapLinker rewrites the heatmaps of one result: data URLs become links
// to the store (the same picture, once), anything else is dropped.
type heatmapLinker struct {
	store  *heatStore
	prefix string            // URL path before the token
	seen   map[string]string // data URL -> link
}

func (l *heatmapLinker) link(s string) string {
	if s == "" {
		return ""
	}
	if u, ok := l.seen[s]; ok {
		return u
	}
	u := ""
	if b64, ok := strings.CutPrefix(s, pngDataURL); ok {
		if png, err := base64.StdEncoding.DecodeString(b64); err == nil {
			if tok := l.store.put(png); tok != "" {
				u = l.prefix + tok + ".png"
			}
		}
	}
	l.seen[s] = u
	return u
}
