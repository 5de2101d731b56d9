package plan

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// keySuffix marks a secret key that holds a signing key (e.g. a token
// key, {{ secret:orders-auth:jwt-key }}): on a cluster the operator puts
// it in the Secret; locally the engine makes a random one per state
// directory, so every function naming it gets the same value and it
// survives restarts (tokens stay valid).
const keySuffix = "-key"

// generatedKey is the local value of a signing key: read from
// StateDir/secrets/<secret>.<key>, made (32 random bytes, hex) on first
// use. Without a state directory (plans built in tests) it lives as long
// as the resolver.
func (r *resolver) generatedKey(secret, key string) (string, error) {
	name := secret + "." + key
	if v, ok := r.keys[name]; ok {
		return v, nil
	}
	if strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("secret %s key %s: not a file name", secret, key)
	}
	v, err := r.loadOrMakeKey(name)
	if err != nil {
		return "", fmt.Errorf("secret %s key %s: %w", secret, key, err)
	}
	if r.keys == nil {
		r.keys = map[string]string{}
	}
	r.keys[name] = v
	return v, nil
}

func (r *resolver) loadOrMakeKey(name string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	fresh := hex.EncodeToString(b)
	if r.s.StateDir == "" {
		return fresh, nil
	}
	path := filepath.Join(r.s.StateDir, "secrets", name)
	if old, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(old))) > 0 {
		return strings.TrimSpace(string(old)), nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(fresh+"\n"), 0o600); err != nil {
		return "", err
	}
	return fresh, nil
}
