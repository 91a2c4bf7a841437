package dispatch

// estimates is the run time learned per task type and size bucket.
type estimates struct {
	runEst map[estKey]*runCell
}

type estKey struct {
	typ    string
	bucket int8
}

// runCell is the learned run time of one task type and size bucket. A
// lease keeps its cell, so a result updates it without a map lookup.
type runCell struct {
	ewma float64 // ns; 0: nothing learned yet
}

// cell returns e's estimate cell, creating it.
func (s *estimates) cell(e *entry) *runCell {
	k := estKey{e.rec.Type, e.bucket}
	c := s.runEst[k]
	if c == nil {
		c = &runCell{}
		s.runEst[k] = c
	}
	return c
}

// estimate is e's expected run time in ns on ex, from its cell: learned for
// its type and size bucket, else for its type without a size, else ex's
// average.
func (s *estimates) estimate(e *entry, c *runCell, ex *executor) float64 {
	if c.ewma > 0 {
		return c.ewma
	}
	if e.bucket != 0 {
		if u := s.runEst[estKey{e.rec.Type, 0}]; u != nil && u.ewma > 0 {
			return u.ewma
		}
	}
	return ex.runNanos
}

// learned is the estimate for typ and size bucket (0 if none learned yet).
func (s *estimates) learned(typ string, bucket int8) float64 {
	if c := s.runEst[estKey{typ, bucket}]; c != nil {
		return c.ewma
	}
	return 0
}

func (c *runCell) learn(runNanos int64) {
	const alpha = 0.2
	if c.ewma == 0 {
		c.ewma = float64(runNanos)
	} else {
		c.ewma = alpha*float64(runNanos) + (1-alpha)*c.ewma
	}
}
