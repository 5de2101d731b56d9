package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ConfigKey is the key the live-configuration load changes.
const ConfigKey = "chaos/value"

// LiveConfig is the live configuration's load and accounting: changes of one
// key committed and pushed to the local configuration repository (its
// hook calls config-source's webhook; the config-poll PingSource reads it
// every minute besides); config-subscribe must end at the head revision.
type LiveConfig struct {
	Repo, Work        string // the bare repository, a clone of it
	Source, Subscribe string // URLs of config-source, config-subscribe
	c                 *client
	mu                sync.Mutex
	n                 int    // last value committed
	pushed, refused   int    // pushes that succeeded, failed
	head              string // commit of the last successful push
	value             int    // its value
}

// NewLiveConfig is the configuration load on the repository repo.
func NewLiveConfig(repo, work, source, subscribe string) *LiveConfig {
	return &LiveConfig{Repo: repo, Work: work, Source: source, Subscribe: subscribe, c: newClient(2 * time.Minute)}
}

// Setup seeds the repository (config-source makes it at its first sync)
// and clones it.
func (c *LiveConfig) Setup(ctx context.Context) error {
	if o := c.c.do(ctx, "POST", c.Source+"/sync", nil, nil, is2xx); !is2xx(o.status) {
		return fmt.Errorf("config-source /sync: status %d %s", o.status, o.body)
	}
	if _, err := git(ctx, "", "clone", "-q", c.Repo, c.Work); err != nil {
		return err
	}
	return os.MkdirAll(filepath.Join(c.Work, filepath.Dir(ConfigKey)), 0o755)
}

// Step commits the key's next value and pushes it.
func (c *LiveConfig) Step(ctx context.Context, _ *rand.Rand) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if err := os.WriteFile(filepath.Join(c.Work, ConfigKey+".json"), fmt.Appendf(nil, "{\"n\": %d}\n", c.n), 0o644); err != nil {
		c.refused++
		return
	}
	if _, err := git(ctx, c.Work, "commit", "-qam", fmt.Sprintf("chaos: n = %d", c.n)); err != nil {
		if _, err = git(ctx, c.Work, "add", "-A"); err == nil {
			_, err = git(ctx, c.Work, "commit", "-qm", fmt.Sprintf("chaos: n = %d", c.n))
		}
		if err != nil {
			c.refused++
			return
		}
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := git(pctx, c.Work, "push", "-q", "origin", "HEAD:main"); err != nil {
		c.refused++ // the next push carries this commit too
		return
	}
	head, err := git(ctx, c.Work, "rev-parse", "HEAD")
	if err != nil {
		c.refused++
		return
	}
	c.pushed, c.head, c.value = c.pushed+1, head, c.n
}

// ConfigTally is the configuration's accounting.
type ConfigTally struct {
	Pushed, Refused int
	AtHead          bool   // config-subscribe serves the last pushed value at its commit
	Got             string // what it serves
}

// Tally asks config-subscribe for the key's value.
func (c *LiveConfig) Tally(ctx context.Context) ConfigTally {
	c.mu.Lock()
	t := ConfigTally{Pushed: c.pushed, Refused: c.refused}
	head, value := c.head, c.value
	c.mu.Unlock()
	o := c.c.do(ctx, "GET", c.Subscribe+"/values?keys="+ConfigKey, nil, nil, is2xx)
	var vs struct {
		Values []struct {
			Key      string          `json:"key"`
			Value    json.RawMessage `json:"value"`
			Revision string          `json:"revision"`
		} `json:"values"`
	}
	if o.status != 200 || json.Unmarshal(o.body, &vs) != nil {
		t.Got = fmt.Sprintf("status %d %s", o.status, o.body)
		return t
	}
	for _, v := range vs.Values {
		if v.Key != ConfigKey {
			continue
		}
		var got struct{ N int }
		_ = json.Unmarshal(v.Value, &got)
		t.Got = fmt.Sprintf("%s at %.8s", v.Value, v.Revision)
		t.AtHead = head != "" && v.Revision == head && got.N == value
	}
	if head == "" {
		t.AtHead = true // nothing pushed: nothing to be at
	}
	return t
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	args = append([]string{"-c", "user.name=chaos", "-c", "user.email=chaos@example.com"}, args...)
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args[4:], " "), err, strings.TrimSpace(out.String()))
	}
	return strings.TrimSpace(out.String()), nil
}
