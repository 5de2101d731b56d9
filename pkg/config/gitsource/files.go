package gitsource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/jobflow/jobflow/pkg/config/change"
)

// SchemaSuffix marks a key's schema: jobs/processor/max-sleep.schema.json
// declares what jobs/processor/max-sleep may hold.
const SchemaSuffix = ".schema.json"

// maxFileBytes bounds one value file.
const maxFileBytes = 1 << 20

// Files is what one commit holds: the valid value of every key (compact
// JSON) and, for each key that cannot be used, the reason.
type Files struct {
	Values  map[string]json.RawMessage
	Refused map[string]string
}

// keyOf is the key a file holds, or "" for a file that is not a value
// (README.md, a schema, anything that is not .json, .yaml or .yml).
func keyOf(name string) string {
	if strings.HasSuffix(name, SchemaSuffix) {
		return ""
	}
	switch ext := path.Ext(name); ext {
	case ".json", ".yaml", ".yml":
		return strings.TrimSuffix(name, ext)
	}
	return ""
}

// ReadTree reads every key of a commit's tree: values parsed (YAML becomes
// JSON) and checked against their schema; a key whose file is unreadable,
// invalid, too large, failing its schema, or held by two files is refused
// with the reason and the others are kept.
func ReadTree(tree *object.Tree) (Files, error) {
	out := Files{Values: map[string]json.RawMessage{}, Refused: map[string]string{}}
	raw := map[string][]byte{}
	sources := map[string][]string{}
	schemas := map[string][]byte{}
	err := tree.Files().ForEach(func(f *object.File) error {
		key := keyOf(f.Name)
		isSchema := strings.HasSuffix(f.Name, SchemaSuffix)
		if key == "" && !isSchema {
			return nil
		}
		if f.Size > maxFileBytes {
			if key != "" {
				sources[key] = append(sources[key], f.Name)
				out.Refused[key] = fmt.Sprintf("%s: %d bytes, over the limit of %d", f.Name, f.Size, maxFileBytes)
			}
			return nil
		}
		b, err := readFile(f)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		if isSchema {
			schemas[strings.TrimSuffix(f.Name, SchemaSuffix)] = b
			return nil
		}
		sources[key] = append(sources[key], f.Name)
		raw[key] = b
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("read tree: %w", err)
	}
	for key, files := range sources {
		if len(files) > 1 {
			out.Refused[key] = fmt.Sprintf("held by %d files (%s): keep one", len(files), strings.Join(files, ", "))
			continue
		}
		if _, refused := out.Refused[key]; refused {
			continue
		}
		v, err := parseValue(files[0], raw[key], schemas[key])
		if err != nil {
			out.Refused[key] = err.Error()
			continue
		}
		out.Values[key] = v
	}
	for key := range out.Values {
		if err := change.CheckKey(key); err != nil {
			delete(out.Values, key)
			out.Refused[key] = err.Error()
		}
	}
	return out, nil
}

func readFile(f *object.File) ([]byte, error) {
	r, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, maxFileBytes+1))
}

// parseValue turns a file into compact JSON and checks it against its schema.
func parseValue(name string, b, schema []byte) (json.RawMessage, error) {
	var js []byte
	if path.Ext(name) == ".json" {
		if !json.Valid(b) {
			var v any
			err := json.Unmarshal(b, &v)
			return nil, fmt.Errorf("%s: invalid JSON: %v", name, err)
		}
		js = b
	} else {
		var err error
		if js, err = yaml.YAMLToJSON(b); err != nil {
			return nil, fmt.Errorf("%s: invalid YAML: %v", name, err)
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, js); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if buf.Len() == 0 || buf.String() == "null" {
		return nil, fmt.Errorf("%s: empty value (delete the file to delete the key)", name)
	}
	if schema != nil {
		if err := validate(name, buf.Bytes(), schema); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

func validate(name string, value, schema []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return fmt.Errorf("%s: its schema is not JSON: %v", name, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		return fmt.Errorf("%s: schema: %v", name, err)
	}
	s, err := c.Compile("schema.json")
	if err != nil {
		return fmt.Errorf("%s: schema does not compile: %v", name, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(value))
	if err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("%s: fails its schema: %s", name, oneLine(err.Error()))
	}
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
