// The parts of Helm 3's template engine that charts rely on, rebuilt on Go's text/template and
// sprig (the libraries helm itself uses), so the chart can be rendered and checked without
// helm or a cluster:
//
//   - the chart on disk: Chart.yaml as .Chart (Name, Version, AppVersion, ...), values.yaml
//     coalesced with override files as .Values, every other file as .Files (Get, GetBytes,
//     Glob, AsConfig, AsSecrets, Lines), symbolic links followed as helm's loader does;
//   - .Release, .Capabilities (KubeVersion, APIVersions.Has), .Template (Name, BasePath);
//   - sprig's functions minus env/expandenv, plus include, tpl, required, toYaml, fromYaml,
//     fromYamlArray, toJson, fromJson, fromJsonArray and lookup (empty, as in `helm template`);
//   - missingkey=zero with "<no value>" removed, partials (_*) not rendered, output split into
//     YAML documents the way helm splits manifests.
//
// Values are decoded the way helm decodes them (YAML -> JSON -> Go), so numbers are float64
// here exactly as in helm, and a template that prints a large number without `int` shows the
// same 1e+06 it would show under helm.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v3"
)

// Chart is a chart directory loaded into memory.
type Chart struct {
	Name      string
	Metadata  map[string]interface{}
	Values    map[string]interface{}
	Templates map[string]string // "synaps/templates/api.yaml" -> text
	Files     Files             // "files/x.yaml" -> bytes (everything but Chart.yaml, values.yaml, templates/)
}

// Release is what .Release shows.
type Release struct {
	Name      string
	Namespace string
	IsUpgrade bool
	Revision  int
}

// Files is .Files: the chart's non-template files.
type Files map[string][]byte

// Get returns a file's content as a string ("" when absent).
func (f Files) Get(name string) string { return string(f[name]) }

// GetBytes returns a file's content.
func (f Files) GetBytes(name string) []byte { return f[name] }

// Glob returns the files whose path matches pattern ('*' within a path segment, '**' across
// segments, '?' one character), like helm's gobwas/glob with '/' as separator.
func (f Files) Glob(pattern string) Files {
	re := globRegexp(pattern)
	out := Files{}
	for name, data := range f {
		if re.MatchString(name) {
			out[name] = data
		}
	}
	return out
}

// AsConfig renders the files as ConfigMap data: base name -> content.
func (f Files) AsConfig() string {
	m := map[string]string{}
	for name, data := range f {
		m[path.Base(name)] = string(data)
	}
	return toYAML(m)
}

// AsSecrets renders the files as Secret data: base name -> base64 content.
func (f Files) AsSecrets() string {
	m := map[string]string{}
	for name, data := range f {
		m[path.Base(name)] = base64.StdEncoding.EncodeToString(data)
	}
	return toYAML(m)
}

// Lines splits a file into lines.
func (f Files) Lines(name string) []string {
	if f[name] == nil {
		return []string{}
	}
	return strings.Split(strings.TrimSuffix(string(f[name]), "\n"), "\n")
}

func globRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '*' && i+1 < len(pattern) && pattern[i+1] == '*':
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// VersionSet is .Capabilities.APIVersions.
type VersionSet []string

// Has reports whether an API version ("apps/v1") or version/kind is available.
func (v VersionSet) Has(s string) bool {
	for _, x := range v {
		if x == s {
			return true
		}
	}
	return false
}

// KubeVersion is .Capabilities.KubeVersion.
type KubeVersion struct {
	Version    string
	Major      string
	Minor      string
	GitVersion string
}

func (k KubeVersion) String() string { return k.Version }

// Capabilities is .Capabilities, describing a recent Kubernetes.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion map[string]string
}

func defaultCapabilities() Capabilities {
	return Capabilities{
		KubeVersion: KubeVersion{Version: "v1.29.0", Major: "1", Minor: "29", GitVersion: "v1.29.0"},
		APIVersions: VersionSet{"v1", "apps/v1", "batch/v1", "autoscaling/v2",
			"networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "policy/v1",
			"traefik.io/v1alpha1"},
		HelmVersion: map[string]string{"Version": "v3.14.0"},
	}
}

// LoadChart reads a chart directory, following symbolic links.
func LoadChart(dir string) (*Chart, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	meta := map[string]interface{}{}
	if err := yaml.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %w", err)
	}
	name, _ := meta["name"].(string)
	if name == "" {
		return nil, fmt.Errorf("Chart.yaml has no name")
	}
	c := &Chart{Name: name, Metadata: chartMetadata(meta), Templates: map[string]string{},
		Files: Files{}}
	if c.Values, err = ReadValuesFile(filepath.Join(dir, "values.yaml")); err != nil {
		return nil, err
	}
	ignore := readHelmignore(dir)
	err = walkFollowingLinks(dir, "", 0, func(rel string, data []byte) {
		if ignore(rel) {
			return
		}
		switch {
		case rel == "Chart.yaml" || rel == "values.yaml" || rel == "values.schema.json":
		case strings.HasPrefix(rel, "templates/"):
			c.Templates[path.Join(name, rel)] = string(data)
		default:
			c.Files[rel] = data
		}
	})
	return c, err
}

// chartMetadata maps Chart.yaml's keys to the field names of helm's chart.Metadata.
func chartMetadata(meta map[string]interface{}) map[string]interface{} {
	special := map[string]string{"apiVersion": "APIVersion", "appVersion": "AppVersion",
		"kubeVersion": "KubeVersion"}
	out := map[string]interface{}{}
	for k, v := range meta {
		if s, ok := special[k]; ok {
			out[s] = v
		} else if k != "" {
			out[strings.ToUpper(k[:1])+k[1:]] = v
		}
	}
	for _, k := range []string{"Name", "Version", "AppVersion", "Description", "Type",
		"APIVersion", "KubeVersion", "Home", "Icon"} {
		if _, ok := out[k]; !ok {
			out[k] = ""
		}
	}
	return out
}

func walkFollowingLinks(root, rel string, depth int, visit func(string, []byte)) error {
	if depth > 32 {
		return fmt.Errorf("%s: symbolic links nested too deep", rel)
	}
	entries, err := os.ReadDir(filepath.Join(root, rel))
	if err != nil {
		return err
	}
	for _, e := range entries {
		childRel := path.Join(rel, e.Name())
		full := filepath.Join(root, childRel)
		info, err := os.Stat(full) // follows links
		if err != nil {
			return fmt.Errorf("%s: %w", childRel, err)
		}
		if info.IsDir() {
			if err := walkFollowingLinks(root, childRel, depth+1, visit); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(full)
		if err != nil {
			return err
		}
		visit(childRel, data)
	}
	return nil
}

// readHelmignore supports .helmignore's common forms: "name", "*.ext", "dir/".
func readHelmignore(dir string) func(string) bool {
	data, _ := os.ReadFile(filepath.Join(dir, ".helmignore"))
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	return func(rel string) bool {
		if rel == ".helmignore" {
			return true
		}
		parts := strings.Split(rel, "/")
		for _, p := range patterns {
			dirOnly := strings.HasSuffix(p, "/")
			p = strings.TrimSuffix(p, "/")
			for i, part := range parts {
				if dirOnly && i == len(parts)-1 {
					continue
				}
				if ok, _ := path.Match(p, part); ok {
					return true
				}
			}
		}
		return false
	}
}

// ReadValuesFile decodes a values file as helm does (YAML, then JSON into Go values).
func ReadValuesFile(file string) (map[string]interface{}, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var v interface{}
	if err := yaml.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if v == nil {
		return map[string]interface{}{}, nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	out := map[string]interface{}{}
	if err := json.Unmarshal(j, &out); err != nil {
		return nil, fmt.Errorf("%s: not a map of values: %w", file, err)
	}
	return out, nil
}

// Coalesce merges override values into base (a copy is returned): maps merge recursively, any
// other value replaces, and null deletes the key, as with `helm -f`.
func Coalesce(base, override map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range override {
		if v == nil {
			delete(out, k)
			continue
		}
		bm, bok := out[k].(map[string]interface{})
		om, ook := v.(map[string]interface{})
		if bok && ook {
			out[k] = Coalesce(bm, om)
		} else {
			out[k] = v
		}
	}
	return out
}

func toYAML(v interface{}) string {
	// Through JSON first, as sigs.k8s.io/yaml does for helm: JSON field names, sorted keys.
	j, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var generic interface{}
	if err := dec.Decode(&generic); err != nil {
		return ""
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(plainNumbers(generic)); err != nil {
		return ""
	}
	enc.Close()
	return strings.TrimSuffix(buf.String(), "\n")
}

// plainNumbers turns json.Number into int64 or float64, which YAML prints unquoted.
func plainNumbers(v interface{}) interface{} {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]interface{}:
		for k, e := range x {
			x[k] = plainNumbers(e)
		}
	case []interface{}:
		for i, e := range x {
			x[i] = plainNumbers(e)
		}
	}
	return v
}

func fromYAML(s string) map[string]interface{} {
	m := map[string]interface{}{}
	var v interface{}
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		m["Error"] = err.Error()
		return m
	}
	j, _ := json.Marshal(v)
	if err := json.Unmarshal(j, &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	var v interface{}
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return []interface{}{err.Error()}
	}
	j, _ := json.Marshal(v)
	var a []interface{}
	if err := json.Unmarshal(j, &a); err != nil {
		return []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	j, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(j)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(s string) []interface{} {
	var a []interface{}
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return []interface{}{err.Error()}
	}
	return a
}

// requiredError marks the message of a failed `required` or `fail`, so it can be reported
// without text/template's location prefix noise.
type requiredError struct{ msg string }

func (e requiredError) Error() string { return e.msg }

// Render executes every template of the chart. It returns the output per template file
// (partials excluded; NOTES.txt included, as helm renders it too).
func Render(c *Chart, values map[string]interface{}, rel Release) (map[string]string, error) {
	top := map[string]interface{}{
		"Values": values,
		"Chart":  c.Metadata,
		"Release": map[string]interface{}{
			"Name": rel.Name, "Namespace": rel.Namespace, "Service": "Helm",
			"IsInstall": !rel.IsUpgrade, "IsUpgrade": rel.IsUpgrade, "Revision": rel.Revision,
		},
		"Capabilities": defaultCapabilities(),
		"Files":        c.Files,
	}
	basePath := path.Join(c.Name, "templates")

	t := template.New("gotpl").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	depth := map[string]int{}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		if depth[name] > 1000 {
			return "", fmt.Errorf("include %q: nested too deep", name)
		}
		depth[name]++
		defer func() { depth[name]-- }()
		var buf strings.Builder
		err := t.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := t.Clone()
		if err != nil {
			return "", err
		}
		name := "tpl"
		if m, ok := data.(map[string]interface{}); ok {
			if tm, ok := m["Template"].(map[string]interface{}); ok {
				if n, ok := tm["Name"].(string); ok {
					name = n
				}
			}
		}
		parsed, err := clone.New(name).Parse(text)
		if err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		var buf strings.Builder
		if err := parsed.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, requiredError{msg}
		}
		if s, ok := v.(string); ok && s == "" {
			return v, requiredError{msg}
		}
		return v, nil
	}
	funcs["fail"] = func(msg string) (string, error) { return "", requiredError{msg} }
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = fromYAML
	funcs["fromYamlArray"] = fromYAMLArray
	funcs["toJson"] = toJSON
	funcs["fromJson"] = fromJSON
	funcs["fromJsonArray"] = fromJSONArray
	funcs["toToml"] = func(interface{}) (string, error) {
		return "", fmt.Errorf("toToml is not supported by this renderer")
	}
	// `helm template` has no cluster: lookup finds nothing.
	funcs["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	t.Funcs(funcs)

	names := make([]string, 0, len(c.Templates))
	for n := range c.Templates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := t.New(n).Parse(c.Templates[n]); err != nil {
			return nil, fmt.Errorf("parse error in %s: %w", n, err)
		}
	}

	out := map[string]string{}
	for _, n := range names {
		if strings.HasPrefix(path.Base(n), "_") {
			continue
		}
		data := map[string]interface{}{}
		for k, v := range top {
			data[k] = v
		}
		data["Template"] = map[string]interface{}{"Name": n, "BasePath": basePath}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, n, data); err != nil {
			var re requiredError
			if asRequired(err, &re) {
				return nil, fmt.Errorf("execution error in %s: %s", n, re.msg)
			}
			return nil, fmt.Errorf("execution error in %s: %w", n, err)
		}
		out[n] = strings.ReplaceAll(buf.String(), "<no value>", "")
	}
	return out, nil
}

func asRequired(err error, target *requiredError) bool {
	for err != nil {
		if re, ok := err.(requiredError); ok {
			*target = re
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// Document is one rendered Kubernetes manifest.
type Document struct {
	Source string // the template file it came from
	Text   string
	Object map[string]interface{}
}

var docSeparator = regexp.MustCompile(`(?:^|\s*\n)---\s*`)

// SplitManifests turns rendered templates into parsed documents, in template order, skipping
// NOTES.txt and empty documents, as helm does. Every document must be valid YAML describing an
// object with apiVersion, kind and metadata.name.
func SplitManifests(rendered map[string]string) ([]Document, error) {
	names := make([]string, 0, len(rendered))
	for n := range rendered {
		names = append(names, n)
	}
	sort.Strings(names)
	var docs []Document
	for _, n := range names {
		if strings.HasSuffix(n, "NOTES.txt") {
			continue
		}
		for _, part := range docSeparator.Split(rendered[n], -1) {
			text := strings.TrimSpace(part)
			if text == "" || isOnlyComments(text) {
				continue
			}
			var v interface{}
			if err := yaml.Unmarshal([]byte(text), &v); err != nil {
				return nil, fmt.Errorf("YAML parse error in %s: %w\n%s", n, err, numbered(text))
			}
			j, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n, err)
			}
			obj := map[string]interface{}{}
			if err := json.Unmarshal(j, &obj); err != nil {
				return nil, fmt.Errorf("%s: a document is not an object: %w", n, err)
			}
			meta, _ := obj["metadata"].(map[string]interface{})
			if obj["apiVersion"] == nil || obj["kind"] == nil || meta == nil || meta["name"] == nil {
				return nil, fmt.Errorf("%s: a document lacks apiVersion, kind or metadata.name:\n%s",
					n, text)
			}
			docs = append(docs, Document{Source: n, Text: text, Object: obj})
		}
	}
	return docs, nil
}

func isOnlyComments(text string) bool {
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

func numbered(text string) string {
	var b strings.Builder
	for i, line := range strings.Split(text, "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, line)
	}
	return b.String()
}

// WriteManifests prints documents like `helm template`.
func WriteManifests(docs []Document) string {
	var b strings.Builder
	for _, d := range docs {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", d.Source, d.Text)
	}
	return b.String()
}
