package store

import (
	"fmt"
	"testing"

	"github.com/shoalrt/shoal/store/pgtest"
)

// BenchmarkPostgresCommit is BenchmarkCommit on a throwaway local
// PostgreSQL server (fsync on, synchronous_commit on): tasks/s of durable
// intake and the mean group size.
func BenchmarkPostgresCommit(b *testing.B) {
	url := pgtest.Start(b).NewDatabase(b)
	n := 0
	for _, batch := range []int{1, 100, 1000} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("batch=%d/writers=%d", batch, writers), func(b *testing.B) {
				n++
				cfg := DefaultPostgresConfig(url)
				cfg.Schema = fmt.Sprintf("bench_%d", n)
				p, err := OpenPostgres(b.Context(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				benchCommitOn(b, p, func() (uint64, uint64) { s := p.Stats(); return s.Commits, s.Syncs }, batch, writers)
			})
		}
	}
}
