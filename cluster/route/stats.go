package route

// StatsRequest asks a router for its RouterStats (answered to the sender).
type StatsRequest struct{}

// RouterStats count a router's forwards to other members since it started.
type RouterStats struct {
	// Forwarded counts requests (parts of a Submit, Wait or Cancel) sent to
	// another member; Failed those of them that failed (no answer in time,
	// the member left, or unreachable). Typed refusals from the member
	// count as answered.
	Forwarded, Failed int64
	// Waiting is how many forwards await an answer now.
	Waiting int64
}

func (r *router) stats() RouterStats {
	s := r.counts
	for _, fs := range r.waiting {
		s.Waiting += int64(len(fs))
	}
	return s
}
