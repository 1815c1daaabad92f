package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestBarRendersCountRateAndFinish(t *testing.T) {
	var buf bytes.Buffer
	b := NewTo(&buf, false, "train", 10, "img")
	b.Add(5)
	b.SetSuffix("loss %.3f", 0.5)
	line := b.Line()
	for _, want := range []string{"train [", "5/10", " 50%", "img/s", "loss 0.500"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	b.Add(5)
	b.Finish()
	b.Finish() // idempotent
	out := buf.String()
	if !strings.Contains(out, "10/10 100%") {
		t.Errorf("final output %q lacks 10/10 100%%", out)
	}
	if strings.Count(out, "10/10") != 1 {
		t.Errorf("Finish drew more than once: %q", out)
	}
}

func TestBarUnknownTotal(t *testing.T) {
	b := NewTo(&bytes.Buffer{}, false, "scan", 0, "files")
	b.Add(7)
	if l := b.Line(); !strings.Contains(l, "scan 7 ") || strings.Contains(l, "ETA") {
		t.Errorf("unexpected line %q", l)
	}
}
