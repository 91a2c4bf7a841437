package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalrt/shoal/node"
)

// TestLookupNeverAnswersAPlaceholder asks, many times at once, for tasks
// that are done and for ids that do not exist, with GET and with a
// timeout-0 wait: every answer must be the task's real state (done with
// its attempts; 404 or unknown). The result hub's deadline tick is made
// fast so that the window between a wait opening and its store read
// resolving (issue 15) is hit often; the window itself is the default's.
func TestLookupNeverAnswersAPlaceholder(t *testing.T) {
	for _, load := range []bool{false, true} {
		t.Run(fmt.Sprintf("load=%v", load), func(t *testing.T) {
			e := start(t, func(c *node.Config) { c.Results.ExpireEvery = time.Millisecond }, nil)
			runWorker(t, e)
			var done []uint64
			for i := range 20 {
				done = append(done, e.submit(map[string]any{"type": "echo", "payload": fmt.Sprintf("d%d", i)})...)
			}
			e.waitDone(done...)
			unknown := []uint64{1 << 40, 1<<40 + 1, 1<<40 + 2}

			ctx, stop := context.WithCancel(context.Background())
			var loaders sync.WaitGroup
			if load {
				for g := range 2 {
					loaders.Go(func() {
						for i := 0; ctx.Err() == nil; i++ {
							body := fmt.Sprintf(`{"tasks":[{"type":"echo","payload":"l%d-%d"}]}`, g, i)
							_, _, _ = call(e, "POST", "/v1/tasks", body)
						}
					})
				}
			}

			var wrong atomic.Int64
			var first sync.Once
			var firstMsg string
			bad := func(format string, a ...any) {
				if wrong.Add(1) == 1 {
					first.Do(func() { firstMsg = fmt.Sprintf(format, a...) })
				}
			}
			const goroutines, calls = 8, 400
			var askers sync.WaitGroup
			for g := range goroutines {
				askers.Go(func() {
					for i := range calls {
						id := done[(g*calls+i)%len(done)]
						unk := unknown[i%len(unknown)]
						switch i % 3 {
						case 0:
							st, body, err := call(e, "GET", "/v1/tasks/"+itoa(id), "")
							var o outcome
							if err == nil {
								err = json.Unmarshal(body, &o)
							}
							if err != nil || st != http.StatusOK || o.State != "done" || o.Attempts != 1 {
								bad("GET done task %d: %d %s (%v)", id, st, body, err)
							}
						case 1:
							st, body, err := call(e, "GET", "/v1/tasks/"+itoa(unk), "")
							if err != nil || st != http.StatusNotFound {
								bad("GET unknown id %d: %d %s (%v)", unk, st, body, err)
							}
						case 2:
							st, body, err := call(e, "POST", "/v1/tasks/wait", fmt.Sprintf(`{"ids":[%d,%d],"timeout_ms":0}`, id, unk))
							var out outcomes
							if err == nil {
								err = json.Unmarshal(body, &out)
							}
							if err != nil || st != http.StatusOK || len(out.Outcomes) != 2 ||
								out.Outcomes[0].State != "done" || out.Outcomes[0].Attempts != 1 || out.Outcomes[1].State != "unknown" {
								bad("wait 0 on done %d and unknown %d: %d %s (%v)", id, unk, st, body, err)
							}
						}
					}
				})
			}
			askers.Wait()
			stop()
			loaders.Wait()
			if n := wrong.Load(); n > 0 {
				t.Fatalf("%d of %d answers were not the task's state; first: %s", n, goroutines*calls, firstMsg)
			}
		})
	}
}

// call is a request safe to make from any goroutine (it does not fail the
// test itself).
func call(e *env, method, path, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e.tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}
