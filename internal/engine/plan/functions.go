package plan

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/jobflow/jobflow/internal/autoscaler"
	"github.com/jobflow/jobflow/internal/manifest"
)

// LocalPort is the fixed port of a function's activator: overrides (the
// engine's JOBFLOW_PORTS), else func.yaml's jobflow.dev/local-port, else 0
// (any free port).
func LocalPort(f manifest.Function, overrides map[string]int) (int, error) {
	if p, ok := overrides[f.Name]; ok {
		return p, nil
	}
	v, ok := f.Deploy.Annotations[manifest.AnnotationLocalPort]
	if !ok {
		return 0, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("function %s: func.yaml %s %q: want a port number", f.Name, manifest.AnnotationLocalPort, v)
	}
	return p, nil
}

// EnvEmitBatch is the variable that makes a function's emitter send
// batches (fn.EmitConfig).
const EnvEmitBatch = "JOBFLOW_EMIT_BATCH"

func buildFunctions(r *resolver) ([]Function, error) {
	var fs []Function
	for _, mf := range r.topo.Functions {
		f, err := buildFunction(r, mf)
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", mf.Name, err)
		}
		fs = append(fs, f)
	}
	return fs, nil
}

func buildFunction(r *resolver, mf manifest.Function) (Function, error) {
	scale, err := autoscaler.FromAnnotations(mf.Deploy.Annotations)
	if err != nil {
		return Function{}, fmt.Errorf("func.yaml: %w", err)
	}
	u, err := r.functionURL(mf.Name)
	if err != nil {
		return Function{}, err
	}
	env, err := r.functionEnv(mf)
	if err != nil {
		return Function{}, err
	}
	env = append(env, "JOBFLOW_FUNCTION_URL="+u) // its own address (e.g. for a webhook it registers)
	return Function{
		Name: mf.Name, Dir: mf.Dir, Package: "./cmd/" + mf.Name,
		Bin:  filepath.Join(r.s.StateDir, "bin", mf.Name),
		Addr: r.at.Functions[mf.Name], URL: u, Env: env,
		Scale: scale.Apply(r.s.Scale),
		HTTP:  mf.Invoke == "http",
		Hint:  mf.Deploy.Annotations[manifest.AnnotationLocalHint],
	}, nil
}

// functionEnv is the environment a function adds to the engine's: the
// servers' addresses, JOBFLOW_EMIT_BATCH (the engine's KafkaSink ingress
// takes batches; not when every hop is one event per request, as on
// Knative), func.yaml's envs resolved, and K_SINK from its SinkBinding.
func (r *resolver) functionEnv(f manifest.Function) ([]string, error) {
	env := r.baseEnv()
	if !r.s.OneEventPerRequest {
		env = append(env, EnvEmitBatch+"=true")
	}
	for _, v := range f.Run.Envs {
		value, ok, err := r.envValue(v.Value)
		if err != nil {
			return nil, fmt.Errorf("func.yaml env %s: %w", v.Name, err)
		}
		if ok {
			env = append(env, v.Name+"="+value)
		}
	}
	if b := r.topo.BindingFor(f.Name); b != nil {
		u, err := r.url(b.Spec.Sink)
		if err != nil {
			return nil, fmt.Errorf("sinkbinding %s: %w", b.Name, err)
		}
		env = append(env, "K_SINK="+u)
	}
	return env, nil
}
