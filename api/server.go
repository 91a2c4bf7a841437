// Package api serves a node's HTTP/JSON API: clients submit, inspect,
// wait for and cancel tasks and read the node's status; HTTP agents in any
// language register, lease, heartbeat and complete tasks (S3.1). It talks to
// the node only through its actors, as the SDK does, so it works the same on
// any node. See docs/api.md and docs/openapi.yaml.
package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// Config configures the HTTP API.
type Config struct {
	// Token, when set, is required as "Authorization: Bearer <Token>" on
	// every route but /healthz and /readyz. Empty: no authentication
	// (loopback use).
	Token string
	// Ready answers /readyz: nil error, 200; an error, 503 with the error
	// as the reason (node.Node.Ready). Nil: /readyz answers 503 "no
	// readiness check".
	Ready func(context.Context) error
	// Metrics serves GET /metrics (metrics.Handler). Nil: 404.
	Metrics http.Handler
	// MaxBodyBytes bounds a request body. Default 16 MiB.
	MaxBodyBytes int64
	// MaxWait bounds a long poll (task wait, agent lease). Default 60 s.
	MaxWait time.Duration
	// DefaultWait is a long poll's duration when the request names none.
	// Default 20 s.
	DefaultWait time.Duration
	// MaxIDs bounds the task ids of one wait or cancel. Default 10,000.
	MaxIDs int
	// MaxAgents bounds the HTTP agents relayed at once. Default 1,024.
	MaxAgents int
	// AskTimeout bounds one request to a node actor. Default 10 s.
	AskTimeout time.Duration
	// Logger receives the API's logs. Default: discard.
	Logger *slog.Logger
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 16 << 20, MaxWait: time.Minute, DefaultWait: 20 * time.Second,
		MaxIDs: 10_000, MaxAgents: 1024, AskTimeout: 10 * time.Second}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.MaxBodyBytes <= 0:
		return fmt.Errorf("api: MaxBodyBytes must be > 0, got %d", c.MaxBodyBytes)
	case c.MaxWait <= 0:
		return fmt.Errorf("api: MaxWait must be > 0, got %v", c.MaxWait)
	case c.DefaultWait <= 0 || c.DefaultWait > c.MaxWait:
		return fmt.Errorf("api: DefaultWait must be in (0, MaxWait=%v], got %v", c.MaxWait, c.DefaultWait)
	case c.MaxIDs <= 0:
		return fmt.Errorf("api: MaxIDs must be > 0, got %d", c.MaxIDs)
	case c.MaxAgents <= 0:
		return fmt.Errorf("api: MaxAgents must be > 0, got %d", c.MaxAgents)
	case c.AskTimeout <= 0:
		return fmt.Errorf("api: AskTimeout must be > 0, got %v", c.AskTimeout)
	}
	return nil
}

// Route is one method and path the API serves.
type Route struct {
	Method, Path string
	// Public routes need no token.
	Public  bool
	handler http.HandlerFunc
}

// Server is the HTTP API of one node.
type Server struct {
	cfg    Config
	conn   *sdk.Conn
	client *sdk.Client
	log    *slog.Logger
	routes []Route
	mux    *http.ServeMux

	mu     sync.Mutex
	agents map[string]*relayEntry
	extra  []Route // added by Handle before the first request
}

// New returns the API over conn (sdk.Local on the node's actor system).
func New(cfg Config, conn *sdk.Conn) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := sdk.NewClient(conn)
	c.Timeout = cfg.AskTimeout
	s := &Server{cfg: cfg, conn: conn, client: c, log: cfg.Logger, agents: map[string]*relayEntry{}}
	s.routes = []Route{
		{Method: "GET", Path: "/healthz", Public: true, handler: s.healthz},
		{Method: "GET", Path: "/readyz", Public: true, handler: s.readyz},
		{Method: "GET", Path: "/metrics", handler: s.metrics},
		{Method: "POST", Path: "/v1/tasks", handler: s.submit},
		{Method: "GET", Path: "/v1/tasks/{id}", handler: s.getTask},
		{Method: "POST", Path: "/v1/tasks/wait", handler: s.wait},
		{Method: "POST", Path: "/v1/tasks/cancel", handler: s.cancel},
		{Method: "GET", Path: "/v1/status", handler: s.status},
		{Method: "POST", Path: "/v1/plan", handler: s.plan},
		{Method: "POST", Path: "/v1/executors/{id}/drain", handler: s.drain},
		{Method: "POST", Path: "/v1/pause", handler: s.pause},
		{Method: "POST", Path: "/v1/resume", handler: s.resume},
		{Method: "POST", Path: "/v1/agents", handler: s.registerAgent},
		{Method: "POST", Path: "/v1/agents/{id}/lease", handler: s.lease},
		{Method: "POST", Path: "/v1/agents/{id}/heartbeat", handler: s.heartbeat},
		{Method: "POST", Path: "/v1/agents/{id}/complete", handler: s.complete},
	}
	s.routes = append(s.routes, s.flowRoutes()...)
	s.routes = append(s.routes, s.serverRoutes()...) // servers.go
	return s, nil
}

// Routes lists what the API serves (the spec test checks them against
// docs/openapi.yaml).
func (s *Server) Routes() []Route { return append(append([]Route(nil), s.routes...), s.extra...) }

// Handle adds a route (other packages' endpoints, such as flows). Call it
// before Handler.
func (s *Server) Handle(method, path string, h http.HandlerFunc) {
	s.extra = append(s.extra, Route{Method: method, Path: path, handler: h})
}

// Handler is the API's http.Handler.
func (s *Server) Handler() http.Handler {
	mux, paths := http.NewServeMux(), http.NewServeMux()
	allow := map[string][]string{}
	for _, r := range s.Routes() {
		if allow[r.Path] == nil {
			paths.HandleFunc(r.Path, func(http.ResponseWriter, *http.Request) {})
		}
		allow[r.Path] = append(allow[r.Path], r.Method)
		h := r.handler
		if !r.Public {
			h = s.auth(h)
		}
		mux.HandleFunc(r.Method+" "+r.Path, h)
	}
	// Anything else: a JSON 405 or 404 in the API's error shape.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := paths.Handler(r); pattern != "" {
			methods := strings.Join(allow[pattern], ", ")
			w.Header().Set("Allow", methods)
			body := errorBody{Error: errorJSON{Code: messages.CodeInvalid.String(),
				Message: fmt.Sprintf("method %s not allowed on %s; use %s", r.Method, r.URL.Path, methods)}}
			writeJSON(w, http.StatusMethodNotAllowed, body)
			return
		}
		writeError(w, messages.Errorf(messages.CodeNotFound, "no route %s %s; see docs/api.md", r.Method, r.URL.Path))
	})
	return limitBody(s.cfg.MaxBodyBytes, mux)
}

// Serve serves the API on ln until ctx ends, then shuts down gracefully
// (long polls are cut short) and stops the agent relays.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// Requests see ctx end: parked lease calls give up at once.
		BaseContext: func(net.Listener) context.Context { return ctx }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if hs.Shutdown(sctx) != nil {
			_ = hs.Close()
		}
	}()
	err := hs.Serve(ln)
	<-done
	s.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the agent relays. Their agents' leases expire as if the
// agents had gone silent.
func (s *Server) Close() {
	s.mu.Lock()
	relays := s.agents
	s.agents = map[string]*relayEntry{}
	s.mu.Unlock()
	for _, r := range relays {
		_ = s.conn.System.Root.StopFuture(r.pid).Wait()
	}
}

func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	if s.cfg.Token == "" {
		return next
	}
	want := []byte(s.cfg.Token)
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoal"`)
			writeError(w, messages.Errorf(messages.CodeUnauthorized, "missing or wrong API token: send Authorization: Bearer <token> (shoal node --api-token)"))
			return
		}
		next(w, r)
	}
}

func limitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			writeError(w, messages.Errorf(messages.CodePayloadTooLarge, "request body of %d bytes is over the limit of %d", r.ContentLength, n))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// waitFor clamps a requested long poll in milliseconds (nil: the default;
// 0: answer at once).
func (s *Server) waitFor(ms *int64) (time.Duration, *messages.Error) {
	if ms == nil {
		return s.cfg.DefaultWait, nil
	}
	if *ms < 0 {
		return 0, messages.Errorf(messages.CodeInvalid, "timeout_ms %d: must be >= 0", *ms)
	}
	return min(time.Duration(*ms)*time.Millisecond, s.cfg.MaxWait), nil
}
