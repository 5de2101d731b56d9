// Package services starts and stops the PostgreSQL and ClickHouse servers
// of the local engine through the project's scripts (scripts/postgres.sh,
// scripts/clickhouse.sh), unless external ones are configured.
package services

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Script is one start/stop script and where its server lives.
type Script struct {
	Path string   // scripts/postgres.sh
	Dir  string   // data directory
	Args []string // ports
}

// Start runs `<script> start DIR ARGS...` and returns the last line it printed
// (the server's address).
func (s Script) Start(ctx context.Context) (string, error) {
	args := append([]string{"start", s.Dir}, s.Args...)
	out, err := run(ctx, s.Path, args...)
	if err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

// Stop runs `<script> stop DIR`.
func (s Script) Stop(ctx context.Context) error {
	_, err := run(ctx, s.Path, "stop", s.Dir)
	return err
}

func run(ctx context.Context, path string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", filepath.Base(path), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Postgres is scripts/postgres.sh for a data dir and port.
func Postgres(root, dir string, port int) Script {
	return Script{Path: filepath.Join(root, "scripts", "postgres.sh"), Dir: dir, Args: []string{strconv.Itoa(port)}}
}

// ClickHouse is scripts/clickhouse.sh for a data dir and ports.
func ClickHouse(root, dir string, tcpPort, httpPort int) Script {
	return Script{Path: filepath.Join(root, "scripts", "clickhouse.sh"), Dir: dir,
		Args: []string{strconv.Itoa(tcpPort), strconv.Itoa(httpPort)}}
}
