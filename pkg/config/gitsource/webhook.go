package gitsource

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Push is what the source needs of a push event. GitHub, Gitea, Gogs,
// Forgejo and GitLab all send ref and after in their push payloads.
type Push struct {
	Ref    string `json:"ref"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// ErrSignature is a webhook whose signature (or token) is missing or wrong.
var ErrSignature = errors.New("webhook signature missing or wrong")

// VerifyWebhook checks a webhook body against secret: GitHub's and Gitea's
// X-Hub-Signature-256 (sha256=<hex HMAC>), Gitea's X-Gitea-Signature
// (<hex HMAC>) or GitLab's X-Gitlab-Token (the secret itself). With no
// secret every webhook is accepted.
func VerifyWebhook(secret string, h http.Header, body []byte) error {
	if secret == "" {
		return nil
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range []string{strings.TrimPrefix(h.Get("X-Hub-Signature-256"), "sha256="), h.Get("X-Gitea-Signature")} {
		if got, err := hex.DecodeString(sig); err == nil && sig != "" && hmac.Equal(got, want) {
			return nil
		}
	}
	if tok := h.Get("X-Gitlab-Token"); tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(secret)) == 1 {
		return nil
	}
	return ErrSignature
}

// ParsePush reads a push payload. ok is false for an event that is not a
// push to branch (a ping, a tag, another branch): nothing to do.
func ParsePush(h http.Header, body []byte, branch string) (p Push, ok bool, err error) {
	for _, name := range []string{"X-GitHub-Event", "X-Gitea-Event", "X-Gogs-Event"} {
		if ev := h.Get(name); ev != "" && ev != "push" {
			return p, false, nil
		}
	}
	if ev := h.Get("X-Gitlab-Event"); ev != "" && ev != "Push Hook" {
		return p, false, nil
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return p, false, fmt.Errorf("push payload: %w", err)
	}
	if p.Ref == "" {
		return p, false, errors.New("push payload: no ref")
	}
	return p, p.Ref == "refs/heads/"+branch, nil
}
