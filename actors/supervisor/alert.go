package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"

	"github.com/shoalrt/shoal/messages"
)

// Sink receives alerts (besides the log, which always does). Send must
// honour ctx: the shell bounds each delivery.
type Sink interface {
	Send(ctx context.Context, a messages.Alert) error
	Name() string
}

// Webhook POSTs the alert as JSON (Content-Type application/json) to URL;
// any status other than 2xx is an error.
type Webhook struct {
	URL    string
	Client *http.Client // nil: http.DefaultClient
}

func (w Webhook) Name() string { return "webhook" }

func (w Webhook) Send(ctx context.Context, a messages.Alert) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("alert webhook %q: %w", w.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	c := w.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("alert webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("alert webhook %s answered %s", w.URL, resp.Status)
	}
	return nil
}

// Exec runs Command with /bin/sh -c, the alert as JSON on its stdin; a
// non-zero exit is an error.
type Exec struct{ Command string }

func (e Exec) Name() string { return "exec" }

func (e Exec) Send(ctx context.Context, a messages.Alert) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", e.Command)
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("alert exec %q: %w: %s", e.Command, err, bytes.TrimSpace(out))
	}
	return nil
}
