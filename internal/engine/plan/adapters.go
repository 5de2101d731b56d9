package plan

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jobflow/jobflow/internal/manifest"
)

func buildAdapters(r *resolver) ([]Adapter, error) {
	var as []Adapter
	for _, d := range r.topo.Adapters {
		a, err := buildAdapter(r, d)
		if err != nil {
			return nil, fmt.Errorf("adapter %s: %w", d.Name, err)
		}
		as = append(as, a)
	}
	return as, nil
}

// buildAdapter runs a Deployment's container as a local process: its ko://
// package built in the repository root, its env resolved as a
// function's, and its container port (and env values ":<port>" naming it)
// mapped to the local port of Addresses.Adapters.
func buildAdapter(r *resolver, d manifest.Deployment) (Adapter, error) {
	c, err := d.Container()
	if err != nil {
		return Adapter{}, err
	}
	port := r.at.Adapters[d.Name]
	a := Adapter{
		Name: d.Name, Dir: r.s.Root, Package: strings.TrimPrefix(c.Image, manifest.KoPrefix), Port: port, After: d.After(),
		Bin: filepath.Join(r.s.StateDir, "bin", d.Name),
	}
	a.Env = r.baseEnv()
	for _, e := range c.Env {
		v, ok, err := r.containerEnv(e, c.Ports, port)
		if err != nil {
			return Adapter{}, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if ok {
			a.Env = append(a.Env, e.Name+"="+v)
		}
	}
	return a, nil
}

// containerEnv is the local value of a container's env entry.
func (r *resolver) containerEnv(e manifest.ContainerEnv, ports []manifest.ContainerPort, local int) (string, bool, error) {
	if e.ValueFrom != nil {
		ref := e.ValueFrom.SecretKeyRef
		if ref == nil {
			return "", false, nil // other sources of the cluster: the engine sets none
		}
		v, err := r.secretValue(ref.Name, ref.Key)
		return v, err == nil, err
	}
	for _, p := range ports {
		if e.Value == ":"+strconv.Itoa(p.ContainerPort) {
			return "127.0.0.1:" + strconv.Itoa(local), true, nil
		}
	}
	return r.envValue(e.Value)
}
