package gitsource

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Seed creates the bare repository dir (branch as its HEAD) with one
// commit of the files under from, unless dir exists already; a user then
// clones it, edits, and pushes. It reports whether it created the repository.
func Seed(dir, from, branch string) (bool, error) {
	if _, err := os.Stat(dir); err == nil {
		return false, nil
	}
	tmp := dir + ".seeding"
	_ = os.RemoveAll(tmp)
	if err := seed(tmp, from, branch); err != nil {
		_ = os.RemoveAll(tmp)
		return false, fmt.Errorf("seed %s from %s: %w", dir, from, err)
	}
	_ = os.Remove(filepath.Join(tmp, "index")) // the seed's staging area: a bare repository has none
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		if _, serr := os.Stat(dir); serr == nil {
			return false, nil // another instance seeded it first
		}
		return false, err
	}
	return true, nil
}

func seed(dir, from, branch string) error {
	if _, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		Bare: true, InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(branch)},
	}); err != nil {
		return err
	}
	if _, err := os.Stat(from); err != nil {
		return err
	}
	// The bare repository's storage with the seed folder as its worktree:
	// the commit's objects and the branch land in the bare repository.
	st := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
	repo, err := git.Open(st, osfs.New(from))
	if err != nil {
		return err
	}
	wt, err := repo.Worktree()
	if err != nil {
		return err
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return fmt.Errorf("add: %w", err)
	}
	sig := &object.Signature{Name: "jobflow", Email: "jobflow@localhost", When: time.Now()}
	_, err = wt.Commit("seed from "+filepath.Base(from), &git.CommitOptions{Author: sig, AllowEmptyCommits: true})
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// InstallHook writes the repository's post-receive hook: each push to it
// is POSTed as a push payload to url, and the answer (the keys changed or
// refused) is printed to whoever pushed. With a token the request carries
// it as X-Gitlab-Token (VerifyWebhook accepts it).
func InstallHook(dir, url, token string) error {
	if url == "" {
		return errors.New("hook: no webhook URL")
	}
	auth := ""
	if token != "" {
		auth = fmt.Sprintf("-H 'X-Gitlab-Token: %s' ", strings.ReplaceAll(token, "'", ""))
	}
	script := fmt.Sprintf(`#!/bin/sh
# Installed by config-source: tells it about every push (jobflow docs/CONFIG.md).
while read old new ref; do
  curl -sS --max-time 30 -X POST -H 'Content-Type: application/json' %s\
    --data "{\"ref\":\"$ref\",\"before\":\"$old\",\"after\":\"$new\"}" '%s' \
    || echo "config-source did not answer: it will find the push at its next poll"
  echo
done
`, auth, strings.ReplaceAll(url, "'", ""))
	hook := filepath.Join(dir, "hooks", "post-receive")
	if err := os.MkdirAll(filepath.Dir(hook), 0o755); err != nil {
		return err
	}
	return os.WriteFile(hook, []byte(script), 0o755)
}
