package optim_test

import (
	"testing"

	"github.com/lvnet-go/lvnet/optim"
)

func TestStepLR(t *testing.T) {
	paper := optim.StepLR{StepSize: 5, Gamma: 0.5}
	tests := []struct {
		sched optim.StepLR
		base  float64
		epoch int
		want  float64
	}{
		{paper, 5e-4, 0, 5e-4},
		{paper, 5e-4, 4, 5e-4},
		{paper, 5e-4, 5, 2.5e-4},
		{paper, 5e-4, 9, 2.5e-4},
		{paper, 5e-4, 10, 1.25e-4},
		{paper, 5e-4, 29, 5e-4 / 32},
		// chained multiplication, as torch: 0.1*0.1*0.1 rounds to 0.0010000000000000002
		// (torch 1.13 gives that value for lr 1, step_size 1, gamma 0.1 after 3 steps).
		{optim.StepLR{StepSize: 1, Gamma: 0.1}, 1, 3, 0.0010000000000000002},
		{optim.StepLR{StepSize: 3, Gamma: 2}, 1, 7, 4},
		{optim.StepLR{StepSize: 0, Gamma: 0.5}, 1, 7, 1},
		{paper, 5e-4, -1, 5e-4},
	}
	for _, tc := range tests {
		if got := tc.sched.LR(tc.base, tc.epoch); got != tc.want {
			t.Errorf("%+v.LR(%v, %d) = %v, want %v", tc.sched, tc.base, tc.epoch, got, tc.want)
		}
	}
}
