package sdk

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/cluster"
)

func TestDialConfigValidate(t *testing.T) {
	if err := (DialConfig{}).Validate(); err != nil {
		t.Fatalf("zero DialConfig: %v", err)
	}
	bad := map[string]DialConfig{
		"Port":         {Port: 70000},
		"ProbeTimeout": {ProbeTimeout: -time.Second},
		"Security":     {Security: cluster.Security{CertFile: "c.pem"}},
	}
	for name, c := range bad {
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: Validate = %v, want an ErrInvalidConfig naming the field", name, err)
		}
	}
	if _, err := Dial("127.0.0.1:1", DialConfig{Port: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Dial with a bad config = %v, want ErrInvalidConfig", err)
	}
}

func TestWorkerConfigValidate(t *testing.T) {
	if err := (WorkerConfig{}).Validate(); err != nil {
		t.Fatalf("zero WorkerConfig: %v", err)
	}
	bad := map[string]WorkerConfig{
		"Slots":        {Slots: -1},
		"Capabilities": {Capabilities: map[string]string{"": "x"}},
	}
	for name, c := range bad {
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: Validate = %v, want an ErrInvalidConfig naming the field", name, err)
		}
	}
	w := NewWorker(nil, WorkerConfig{ID: "w", Slots: -1})
	w.Handle("t", nil)
	if err := w.Run(context.Background()); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Run with a bad config = %v, want ErrInvalidConfig", err)
	}
}
