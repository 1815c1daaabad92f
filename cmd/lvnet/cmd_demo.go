package main

import (
	"fmt"
	"time"

	"github.com/lvnet-go/lvnet/torch"
)

// runDemo is the main job of `make demo`. For now: a smoke run of the engine
// (a conv + batch norm + linear forward and backward on random data).
func runDemo(args []string) error {
	fs := newFlags("demo", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s := torch.NewScope()
	defer s.Close()
	g, err := torch.NewGenerator(1)
	if err != nil {
		return err
	}
	defer g.Close()
	t0 := time.Now()
	x := torch.Randn(s, g, 2, 3, 64, 64)
	w := torch.Randn(s, g, 8, 3, 3, 3).MulScalar(0.1).SetRequiresGrad(true)
	y := x.Conv2d(w, nil, torch.Conv{Padding: torch.Sq(1)}).BatchNorm(nil, nil, nil, nil, true, 0.1, 1e-5).Relu()
	loss := y.Mean(false)
	if err := loss.Backward(); err != nil {
		return err
	}
	v, err := loss.Item()
	if err != nil {
		return err
	}
	gn, err := w.Grad().In(s).Norm(2, false).Item()
	if err != nil {
		return err
	}
	fmt.Printf("engine smoke run: loss %.6f, |grad| %.6f, %d threads, %s\n", v, gn, torch.Threads(), time.Since(t0).Round(time.Millisecond))
	return nil
}
