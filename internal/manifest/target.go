package manifest

import "fmt"

// Target is where a Destination points: a function or a KafkaSink (by name)
// plus an optional path, or an absolute URI.
type Target struct {
	Function string
	Sink     string
	Broker   string
	Path     string
	URI      string
}

// Target resolves d.
func (t *Topology) Target(d Destination) (Target, error) {
	if d.Ref == nil {
		if d.URI == "" {
			return Target{}, fmt.Errorf("neither ref nor uri")
		}
		return Target{URI: d.URI}, nil
	}
	switch d.Ref.Kind {
	case KindService:
		if t.Function(d.Ref.Name) == nil {
			return Target{}, fmt.Errorf("no function %q in functions/", d.Ref.Name)
		}
		return Target{Function: d.Ref.Name, Path: d.URI}, nil
	case KindKafkaSink:
		if t.Sink(d.Ref.Name) == nil {
			return Target{}, fmt.Errorf("no KafkaSink %q in sinks/", d.Ref.Name)
		}
		return Target{Sink: d.Ref.Name, Path: d.URI}, nil
	case KindBroker:
		if t.Broker(d.Ref.Name) == nil {
			return Target{}, fmt.Errorf("no Broker %q in brokers/", d.Ref.Name)
		}
		return Target{Broker: d.Ref.Name, Path: d.URI}, nil
	}
	return Target{}, fmt.Errorf("ref kind %q: the engine resolves Service (a function), KafkaSink and Broker", d.Ref.Kind)
}

// Function returns the function named name, or nil.
func (t *Topology) Function(name string) *Function {
	for i := range t.Functions {
		if t.Functions[i].Name == name {
			return &t.Functions[i]
		}
	}
	return nil
}

// Sink returns the KafkaSink named name, or nil.
func (t *Topology) Sink(name string) *KafkaSink {
	for i := range t.Sinks {
		if t.Sinks[i].Name == name {
			return &t.Sinks[i]
		}
	}
	return nil
}

// BindingFor returns the SinkBinding whose subject is function, or nil.
func (t *Topology) BindingFor(function string) *SinkBinding {
	for i := range t.Bindings {
		if t.Bindings[i].Spec.Subject.Name == function {
			return &t.Bindings[i]
		}
	}
	return nil
}
