// Package crdcheck validates objects against CustomResourceDefinition
// schemas the way kube-apiserver does on create with strict field
// validation: unknown fields (those the structural schema would prune) are
// errors, and the OpenAPI v3 schema of the object's version must accept it.
package crdcheck

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// Schema is one served version of a CRD.
type Schema struct {
	Group, Version, Kind string
	structural           *structuralschema.Structural
	validator            validation.SchemaValidator
}

// APIVersion is group/version.
func (s *Schema) APIVersion() string { return s.Group + "/" + s.Version }

// Set holds schemas by apiVersion and kind.
type Set map[string]*Schema

func key(apiVersion, kind string) string { return apiVersion + ", Kind=" + kind }

// LoadFiles reads CRDs from YAML files (several documents per file are
// allowed; documents that are not CRDs are skipped).
func LoadFiles(files ...string) (Set, error) {
	set := Set{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, doc := range bytes.Split(b, []byte("\n---")) {
			var head struct{ Kind string }
			if err := yaml.Unmarshal(doc, &head); err != nil || head.Kind != "CustomResourceDefinition" {
				continue
			}
			var crd apiextv1.CustomResourceDefinition
			if err := yaml.UnmarshalStrict(doc, &crd); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if err := set.add(&crd); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: no CustomResourceDefinition", f)
		}
	}
	return set, nil
}

func (set Set) add(crd *apiextv1.CustomResourceDefinition) error {
	for _, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			return fmt.Errorf("crd %s version %s has no schema", crd.Name, v.Name)
		}
		var internal apiextensions.JSONSchemaProps
		if err := apiextv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
			return fmt.Errorf("crd %s version %s: convert schema: %w", crd.Name, v.Name, err)
		}
		st, err := structuralschema.NewStructural(&internal)
		if err != nil {
			return fmt.Errorf("crd %s version %s: structural schema: %w", crd.Name, v.Name, err)
		}
		if errs := structuralschema.ValidateStructural(nil, st); len(errs) > 0 {
			return fmt.Errorf("crd %s version %s: schema is not structural: %v", crd.Name, v.Name, errs.ToAggregate())
		}
		val, _, err := validation.NewSchemaValidator(&internal)
		if err != nil {
			return fmt.Errorf("crd %s version %s: validator: %w", crd.Name, v.Name, err)
		}
		s := &Schema{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind, structural: st, validator: val}
		set[key(s.APIVersion(), s.Kind)] = s
	}
	return nil
}

// Has reports whether set holds a schema for apiVersion and kind.
func (set Set) Has(apiVersion, kind string) bool { return set[key(apiVersion, kind)] != nil }

// Validate checks one object given as YAML or JSON. It returns every
// problem found: unknown fields, then schema violations.
func (set Set) Validate(doc []byte) error {
	var obj map[string]any
	if err := yaml.Unmarshal(doc, &obj); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	s := set[key(apiVersion, kind)]
	if s == nil {
		return fmt.Errorf("no CRD schema for %s", key(apiVersion, kind))
	}
	var errs []string
	// Pruning works in place: validate a copy so callers keep their object.
	pruned := deepCopy(obj)
	opts := structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}
	for _, p := range pruning.PruneWithOptions(pruned, s.structural, true, opts) {
		errs = append(errs, fmt.Sprintf("unknown field %q", p))
	}
	for _, e := range validation.ValidateCustomResource(field.NewPath(""), obj, s.validator) {
		errs = append(errs, e.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s %s: %s", kind, name(obj), strings.Join(errs, "; "))
	}
	return nil
}

func name(obj map[string]any) string {
	if m, ok := obj["metadata"].(map[string]any); ok {
		if n, ok := m["name"].(string); ok {
			return n
		}
	}
	return "(no name)"
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, x := range t {
			s[i] = deepCopy(x)
		}
		return s
	default:
		return v
	}
}
