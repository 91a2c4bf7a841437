package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/api"
	"github.com/shoalrt/shoal/metrics"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
)

const testToken = "s3cret"

// env is a real node (Pebble in a temp dir) with the API on a real loopback
// listener.
type env struct {
	t    *testing.T
	node *node.Node
	conn *sdk.Conn
	api  *api.Server
	url  string
	tok  string
}

func start(t *testing.T, mutNode func(*node.Config), mutAPI func(*api.Config)) *env {
	t.Helper()
	system := actor.NewActorSystem()
	cfg := node.DefaultConfig(t.TempDir())
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if mutNode != nil {
		mutNode(&cfg)
	}
	n, err := node.Start(context.Background(), cfg, system, nil)
	if err != nil {
		t.Fatal(err)
	}
	acfg := api.DefaultConfig()
	acfg.Token = testToken
	acfg.Logger = cfg.Logger
	acfg.Ready, acfg.Metrics = n.Ready, metrics.Handler(n, metrics.Config{})
	if mutAPI != nil {
		mutAPI(&acfg)
	}
	conn := sdk.Local(system)
	api, err := api.New(acfg, conn)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(api.Handler())
	t.Cleanup(func() {
		ts.Close()
		api.Close()
		_ = n.Stop()
	})
	return &env{t: t, node: n, conn: conn, api: api, url: ts.URL, tok: acfg.Token}
}

// do sends body (a string is sent as is, anything else as JSON) and decodes
// the answer into out (when not nil). It returns the status.
func (e *env) do(method, path string, body any, out any) int {
	e.t.Helper()
	return e.doTok(e.tok, method, path, body, out)
}

func (e *env) doTok(tok, method, path string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	c := &http.Client{Timeout: 90 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("%s %s: content type %q, want application/json (body %s)", method, path, ct, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// apiError is the error shape of every failed call.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Index   *int32 `json:"index"`
	} `json:"error"`
}

// wantError checks status and code of a failing call.
func (e *env) wantError(status int, code, method, path string, body any) apiError {
	e.t.Helper()
	var ae apiError
	if got := e.do(method, path, body, &ae); got != status || ae.Error.Code != code {
		e.t.Fatalf("%s %s %v: status %d code %q (%s), want %d %q", method, path, body, got, ae.Error.Code, ae.Error.Message, status, code)
	}
	if ae.Error.Message == "" {
		e.t.Fatalf("%s %s: error without a message", method, path)
	}
	return ae
}

type outcome struct {
	ID           uint64  `json:"id"`
	State        string  `json:"state"`
	Output       *string `json:"output"`
	OutputBase64 string  `json:"output_base64"`
	Error        string  `json:"error"`
	Attempts     int32   `json:"attempts"`
	AliasOf      uint64  `json:"alias_of"`
}

type outcomes struct {
	Outcomes []outcome `json:"outcomes"`
	Done     bool      `json:"done"`
}

type ids struct {
	IDs []uint64 `json:"ids"`
}

// submit submits tasks and returns their ids.
func (e *env) submit(tasks ...map[string]any) []uint64 {
	e.t.Helper()
	var out ids
	if st := e.do("POST", "/v1/tasks", map[string]any{"tasks": tasks}, &out); st != http.StatusCreated || len(out.IDs) != len(tasks) {
		e.t.Fatalf("submit: status %d ids %v", st, out.IDs)
	}
	return out.IDs
}

// waitDone long-polls until every task is terminal (bounded by the test).
func (e *env) waitDone(idl ...uint64) []outcome {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var out outcomes
		if st := e.do("POST", "/v1/tasks/wait", map[string]any{"ids": idl, "timeout_ms": 5000}, &out); st != http.StatusOK {
			e.t.Fatalf("wait: status %d", st)
		}
		if out.Done {
			return out.Outcomes
		}
	}
	e.t.Fatalf("tasks %v not finished within 60 s", idl)
	return nil
}
