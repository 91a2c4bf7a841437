package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/shoalrt/shoal/hosts/table"
)

// Limits on what a command may write: a result travels back through the
// table and the node, and stderr becomes an error message.
const (
	maxStdout = 16 << 20
	maxStderr = 64 << 10
)

// Command returns a handler running command with /bin/sh -c: the
// instruction's payload on stdin, its result from stdout, and a non-zero
// exit a failure whose error is the exit status and stderr. The command
// sees SHOAL_TASK_ID, SHOAL_ATTEMPT, SHOAL_INSTRUCTION and SHOAL_TYPE in its
// environment. It runs in its own process group, killed whole when the
// instruction is cancelled, and (on Linux) killed if the agent dies.
func Command(command string) Handler {
	return func(ctx context.Context, in table.Instruction) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		cmd.Stdin = bytes.NewReader(in.Payload)
		stdout := &capped{max: maxStdout}
		stderr := &capped{max: maxStderr}
		cmd.Stdout, cmd.Stderr = stdout, stderr
		cmd.Env = append(os.Environ(),
			"SHOAL_TASK_ID="+strconv.FormatUint(in.TaskID, 10),
			"SHOAL_ATTEMPT="+strconv.Itoa(int(in.Attempt)),
			"SHOAL_INSTRUCTION="+strconv.FormatInt(in.ID, 10),
			"SHOAL_TYPE="+in.Type)
		ownGroup(cmd)
		cmd.WaitDelay = 2 * time.Second
		err := cmd.Run()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("command stopped: %w", ctx.Err())
		}
		if err != nil {
			msg := strings.TrimSpace(stderr.String())
			if msg == "" {
				return nil, fmt.Errorf("command %q: %v", command, err)
			}
			return nil, fmt.Errorf("command %q: %v: %s", command, err, msg)
		}
		if stdout.over {
			return nil, fmt.Errorf("command %q wrote more than %d bytes to stdout", command, maxStdout)
		}
		return stdout.Bytes(), nil
	}
}

// capped is a buffer that keeps the first max bytes and notes the excess.
type capped struct {
	bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); len(p) > room {
		c.over = true
		if room > 0 {
			c.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return c.Buffer.Write(p)
}
