package optim

// StepLR is torch.optim.lr_scheduler.StepLR: the learning rate is multiplied
// by Gamma every StepSize epochs.
type StepLR struct {
	StepSize int
	Gamma    float64
}

// LR returns the learning rate for epoch (0-based: torch's last_epoch after
// epoch calls to scheduler.step()), base * Gamma^(epoch/StepSize) with integer
// division. It multiplies by Gamma once per decay, as torch's chained update
// does, so the value matches torch's to the last bit. A StepSize below 1 or a
// negative epoch leaves base unchanged.
func (s StepLR) LR(base float64, epoch int) float64 {
	if s.StepSize < 1 || epoch < 0 {
		return base
	}
	lr := base
	for k := 0; k < epoch/s.StepSize; k++ {
		lr *= s.Gamma
	}
	return lr
}
