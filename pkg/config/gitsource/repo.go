// Package gitsource reads configuration from a Git repository: one key per
// file (the path without its extension; JSON or YAML, an optional JSON
// Schema beside it), each commit's files diffed key by key against the
// values already published, a push webhook (GitHub, Gitea, GitLab) and a
// poll to learn of new commits, and the local bare repository the engine
// seeds from the repository's config/ folder.
package gitsource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Repo is the configuration repository at one branch: a local path (read
// in place) or a remote URL (fetched into memory).
type Repo struct {
	URL    string
	Branch string
	Auth   transport.AuthMethod

	mu     sync.Mutex
	remote *git.Repository // the in-memory copy of a remote
}

// NewRepo reads url at branch; token, when set, authenticates HTTPS.
func NewRepo(url, branch, token string) *Repo {
	r := &Repo{URL: url, Branch: branch}
	if token != "" {
		r.Auth = &githttp.BasicAuth{Username: "git", Password: token}
	}
	return r
}

func (r *Repo) local() bool { return !strings.Contains(r.URL, "://") && !strings.Contains(r.URL, "@") }

// Head is the newest commit of the branch.
func (r *Repo) Head(ctx context.Context) (*object.Commit, error) {
	repo, ref, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	h, err := repo.Reference(ref, true)
	if err != nil {
		return nil, fmt.Errorf("git %s: branch %s: %w", r.URL, r.Branch, err)
	}
	c, err := repo.CommitObject(h.Hash())
	if err != nil {
		return nil, fmt.Errorf("git %s: commit %s: %w", r.URL, h.Hash(), err)
	}
	return c, nil
}

// open returns the repository, fetched when remote, and the reference of
// the branch in it.
func (r *Repo) open(ctx context.Context) (*git.Repository, plumbing.ReferenceName, error) {
	if r.local() {
		// Opened afresh each time: a push adds packs and moves refs under us.
		repo, err := git.PlainOpen(r.URL)
		if err != nil {
			return nil, "", fmt.Errorf("git %s: %w", r.URL, err)
		}
		return repo, plumbing.NewBranchReferenceName(r.Branch), nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ref := plumbing.NewRemoteReferenceName("origin", r.Branch)
	spec := config.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", r.Branch, ref))
	if r.remote == nil {
		repo, err := git.Init(memory.NewStorage(), nil)
		if err != nil {
			return nil, "", err
		}
		if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{r.URL}, Fetch: []config.RefSpec{spec}}); err != nil {
			return nil, "", err
		}
		r.remote = repo
	}
	err := r.remote.FetchContext(ctx, &git.FetchOptions{RefSpecs: []config.RefSpec{spec}, Depth: 1, Auth: r.Auth, Force: true})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, "", fmt.Errorf("git fetch %s: %w", r.URL, err)
	}
	return r.remote, ref, nil
}
