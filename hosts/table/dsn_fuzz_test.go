package table

import (
	"strings"
	"testing"
)

// FuzzParseDSN: any string parses or fails with ErrBadDSN, never panics,
// and an error never echoes a password.
func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"", "hosts.db", "sqlite:/a/b.db", "sqlite:///a.db", "file:x.db", "postgres://u:pw@h:5432/db?sslmode=disable",
		"postgresql://u:pw@h:bad/db", "mysql://u:pw@h/db", "sqlite:x?y", "postgres://u:pw@[::1/db"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		backend, target, err := parseDSN(dsn)
		if err != nil {
			if backend != "" || target != "" {
				t.Fatalf("parseDSN(%q) = %q, %q and %v", dsn, backend, target, err)
			}
			if i := strings.Index(dsn, ":pw@"); i >= 0 && strings.Contains(err.Error(), ":pw@") {
				t.Fatalf("parseDSN(%q) error echoes the password: %v", dsn, err)
			}
			return
		}
		if backend != "sqlite" && backend != "postgres" || target == "" {
			t.Fatalf("parseDSN(%q) = %q, %q", dsn, backend, target)
		}
	})
}
