package manifest

import (
	"fmt"
	"strings"
)

// Deployment is what the engine reads of an apps/v1 Deployment in
// adapters/: a long-running process (a source such as CDC) that a cluster
// runs as this Deployment and the local engine runs as a supervised process.
type Deployment struct {
	Meta `json:"metadata"`
	Spec struct {
		Template struct {
			Spec struct {
				Containers []Container `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// Container is one container of a Deployment's pod.
type Container struct {
	Name  string          `json:"name"`
	Image string          `json:"image"`
	Env   []ContainerEnv  `json:"env,omitempty"`
	Ports []ContainerPort `json:"ports,omitempty"`
}

// ContainerEnv is a container's env entry: a value or a secret's key.
type ContainerEnv struct {
	Name      string `json:"name"`
	Value     string `json:"value,omitempty"`
	ValueFrom *struct {
		SecretKeyRef *SecretKeyRef `json:"secretKeyRef,omitempty"`
	} `json:"valueFrom,omitempty"`
}

// SecretKeyRef names one key of a Secret.
type SecretKeyRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// ContainerPort is a port a container listens on.
type ContainerPort struct {
	ContainerPort int `json:"containerPort"`
}

// KoPrefix marks an image ko builds from a Go package path.
const KoPrefix = "ko://"

// Container returns the adapter's only container; the engine runs one
// process per adapter, built from the ko:// package of its image.
func (d Deployment) Container() (Container, error) {
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		return Container{}, fmt.Errorf("deployment %s: want one container, got %d", d.Name, len(cs))
	}
	if !strings.HasPrefix(cs[0].Image, KoPrefix) {
		return Container{}, fmt.Errorf("deployment %s: image %q: want %s<go package>", d.Name, cs[0].Image, KoPrefix)
	}
	return cs[0], nil
}

// After lists the functions of AnnotationAfter.
func (d Deployment) After() []string {
	var names []string
	for _, n := range strings.Split(d.Annotations[AnnotationAfter], ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}
