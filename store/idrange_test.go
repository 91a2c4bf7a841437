package store_test

import (
	"reflect"
	"testing"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/store/storetest"
)

func TestIDRange(t *testing.T) {
	s, err := store.OpenPebble(store.DefaultPebbleConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var b store.Batch
	for _, id := range []uint64{1, 5, 10, 11, 20, 30} {
		b.Tasks = append(b.Tasks, storetest.Task(id, messages.ClassNormal))
	}
	if err := s.Commit(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	r := store.IDRange{Store: s, Lo: 5, Hi: 20}
	for _, tc := range []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 10, []uint64{5, 10, 11, 20}},
		{5, 10, []uint64{10, 11, 20}},
		{0, 2, []uint64{5, 10}},
		{20, 10, []uint64{}},
		{25, 10, []uint64{}},
	} {
		if got := storetest.PendingIDs(t, r, messages.ClassNormal, tc.after, tc.limit); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Pending(after %d, limit %d) = %v, want %v", tc.after, tc.limit, got, tc.want)
		}
	}
}
