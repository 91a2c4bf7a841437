package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// Provider starts and stops cloud executors. Provision returns once the
// executor is starting (it registers with the node by itself, under
// Request.ID); the handle it returns is passed back to Release. Both may
// block: the shell calls them off the actor, bounded by ctx.
type Provider interface {
	Name() string
	Provision(ctx context.Context, req Request) (handle string, err error)
	Release(ctx context.Context, id, handle string) error
}

// Target is what every provider needs to point an executor at this node.
type Target struct {
	Node  string // host:port of the node's remote endpoint
	Token string // executor token, if the node requires one
	// TLSCert, TLSKey and TLSCA, when set, are the PEM files of mutual TLS
	// (docs/security.md); cloud workers use the node's.
	TLSCert, TLSKey, TLSCA string
}

// env is the worker's environment: the token travels as SHOAL_TOKEN, not
// on its command line.
func (t Target) env() []string {
	if t.Token == "" {
		return nil
	}
	return append(os.Environ(), "SHOAL_TOKEN="+t.Token)
}

// workerArgs are the `shoal worker` arguments for req.
func workerArgs(t Target, req Request) []string {
	args := []string{"worker", "--node", t.Node, "--id", req.ID, "--slots", strconv.Itoa(req.Slots), "--cloud"}
	if t.TLSCert != "" {
		args = append(args, "--tls-cert", t.TLSCert, "--tls-key", t.TLSKey, "--tls-ca", t.TLSCA)
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range req.Capabilities {
			if !yield(k) {
				return
			}
		}
	}) {
		if k != messages.CapCloud {
			args = append(args, "--cap", k+"="+req.Capabilities[k])
		}
	}
	return args
}

// Process runs cloud executors as `shoal worker --cloud` child processes of
// the node (the reference provider: demo and tests).
type Process struct {
	Binary string // the shoal binary; default os.Executable()
	Target Target
	// LogDir, when set, receives each worker's output (<id>.log).
	LogDir string

	mu    sync.Mutex
	procs map[string]*exec.Cmd
	done  map[string]chan struct{}
}

// Name implements Provider.
func (p *Process) Name() string { return "process" }

// Provision implements Provider: it starts the worker process.
func (p *Process) Provision(_ context.Context, req Request) (string, error) {
	bin := p.Binary
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return "", fmt.Errorf("process provider: locate the shoal binary: %w", err)
		}
	}
	cmd := exec.Command(bin, workerArgs(p.Target, req)...)
	cmd.Env = p.Target.env()
	cmd.SysProcAttr = childAttr() // dies with the node where the OS allows
	if p.LogDir != "" {
		f, err := os.Create(p.LogDir + "/" + req.ID + ".log")
		if err != nil {
			return "", fmt.Errorf("process provider: %w", err)
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("process provider: start %s: %w", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	if p.procs == nil {
		p.procs, p.done = map[string]*exec.Cmd{}, map[string]chan struct{}{}
	}
	p.procs[req.ID], p.done[req.ID] = cmd, done
	p.mu.Unlock()
	return strconv.Itoa(cmd.Process.Pid), nil
}

// Release implements Provider: SIGTERM, then SIGKILL after 5 s (or when
// ctx ends).
func (p *Process) Release(ctx context.Context, id, _ string) error {
	p.mu.Lock()
	cmd, done := p.procs[id], p.done[id]
	delete(p.procs, id)
	delete(p.done, id)
	p.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("process provider: no process for executor %s", id)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	_ = cmd.Process.Kill()
	<-done
	return nil
}

// Running lists the executor ids with a live process (tests).
func (p *Process) Running() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for id, d := range p.done {
		select {
		case <-d:
		default:
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Docker runs cloud executors as containers of the project's image
// (`make image` builds shoal:dev), on the host network so they reach the
// node at Target.Node.
type Docker struct {
	Image  string // default "shoal:dev"
	Target Target
	// Binary is the docker CLI; default "docker".
	Binary string
}

// Name implements Provider.
func (d *Docker) Name() string { return "docker" }

func (d *Docker) bin() string {
	if d.Binary != "" {
		return d.Binary
	}
	return "docker"
}

// Provision implements Provider: docker run -d, the handle is the
// container id.
func (d *Docker) Provision(ctx context.Context, req Request) (string, error) {
	img := d.Image
	if img == "" {
		img = "shoal:dev"
	}
	args := []string{"run", "-d", "--rm", "--network", "host", "--name", "shoal-" + req.ID, "--label", "shoal.cloud=" + req.ID}
	if d.Target.Token != "" {
		args = append(args, "-e", "SHOAL_TOKEN") // its value from docker's environment, not the command line
	}
	for _, f := range []string{d.Target.TLSCert, d.Target.TLSKey, d.Target.TLSCA} {
		if f != "" {
			args = append(args, "-v", f+":"+f+":ro") // the TLS files at the same paths
		}
	}
	args = append(append(args, img), workerArgs(d.Target, req)...)
	out, err := run(ctx, nil, d.Target.env(), d.bin(), args...)
	if err != nil {
		return "", fmt.Errorf("docker provider: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Release implements Provider: docker rm -f.
func (d *Docker) Release(ctx context.Context, id, handle string) error {
	if handle == "" {
		handle = "shoal-" + id
	}
	if _, err := run(ctx, nil, nil, d.bin(), "rm", "-f", handle); err != nil {
		return fmt.Errorf("docker provider: %w", err)
	}
	return nil
}

// Exec runs an operator's script for each provision and release. The
// script gets one JSON object on standard input:
//
//	{"action": "provision", "node": "host:port", "token": "...", "tls": {"cert", "key", "ca"}, "request": {Request}}
//	{"action": "release", "id": "<executor id>", "handle": "<its handle>"}
//
// For a provision it prints one JSON object, {"handle": "...", "address":
// "..."} (address informative), and starts an executor that registers with
// the node under request.id. A non-zero exit is a failure; its standard
// error is reported.
type Exec struct {
	Script string
	Target Target
}

// Name implements Provider.
func (e *Exec) Name() string { return "exec" }

// ExecReply is what the script prints for a provision.
type ExecReply struct {
	Handle  string `json:"handle"`
	Address string `json:"address,omitempty"`
}

// Provision implements Provider.
func (e *Exec) Provision(ctx context.Context, req Request) (string, error) {
	msg := map[string]any{"action": "provision", "node": e.Target.Node, "token": e.Target.Token, "request": req}
	if e.Target.TLSCert != "" {
		msg["tls"] = map[string]string{"cert": e.Target.TLSCert, "key": e.Target.TLSKey, "ca": e.Target.TLSCA}
	}
	in, _ := json.Marshal(msg)
	out, err := run(ctx, in, nil, e.Script)
	if err != nil {
		return "", fmt.Errorf("exec provider: %w", err)
	}
	var r ExecReply
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil || r.Handle == "" {
		return "", fmt.Errorf("exec provider: %s printed %q; want {\"handle\": \"...\"}", e.Script, truncate(out))
	}
	return r.Handle, nil
}

// Release implements Provider.
func (e *Exec) Release(ctx context.Context, id, handle string) error {
	in, _ := json.Marshal(map[string]any{"action": "release", "id": id, "handle": handle})
	if _, err := run(ctx, in, nil, e.Script); err != nil {
		return fmt.Errorf("exec provider: %w", err)
	}
	return nil
}

func run(ctx context.Context, stdin []byte, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env // nil: this process's environment
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, truncate(stderr.Bytes()))
		}
		return out, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

func truncate(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// NewProvider returns the provider named in cfg (nil for "").
func NewProvider(cfg Config, t Target, script, image, logDir string) (Provider, error) {
	switch cfg.Provider {
	case "":
		return nil, nil
	case "process":
		return &Process{Target: t, LogDir: logDir}, nil
	case "docker":
		return &Docker{Target: t, Image: image}, nil
	case "exec":
		if script == "" {
			return nil, errors.New("cloud: the exec provider needs a script (--cloud-script)")
		}
		return &Exec{Script: script, Target: t}, nil
	}
	return nil, fmt.Errorf("cloud: unknown provider %q (process, docker, exec)", cfg.Provider)
}
