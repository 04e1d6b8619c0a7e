package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A throwaway chart in a temp dir: templates and files given by path.
func writeChart(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	all := map[string]string{
		"Chart.yaml":  "apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: \"4.5\"\n",
		"values.yaml": "replicas: 2\nbig: 1000000\nname: web\nnested:\n  keep: a\n  drop: b\n",
	}
	for k, v := range files {
		all[k] = v
	}
	for p, content := range all {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func render(t *testing.T, dir string, overrides map[string]interface{}) (map[string]string, error) {
	t.Helper()
	c, err := LoadChart(dir)
	if err != nil {
		t.Fatal(err)
	}
	values := c.Values
	if overrides != nil {
		values = Coalesce(values, overrides)
	}
	return Render(c, values, Release{Name: "rel", Namespace: "ns", Revision: 1})
}

func TestIncludeNindentAndBuiltins(t *testing.T) {
	dir := writeChart(t, map[string]string{
		"templates/_helpers.tpl": `{{- define "demo.labels" -}}
app: {{ .Chart.Name }}
release: {{ .Release.Name }}
{{- end -}}`,
		"templates/cm.yaml": `metadata:
  labels:
    {{- include "demo.labels" . | nindent 4 }}
  version: {{ .Chart.Version }}-{{ .Chart.AppVersion }}
  ns: {{ .Release.Namespace }}
  missing: "{{ .Values.nope }}"
  template: {{ .Template.Name }} in {{ .Template.BasePath }}
  has: {{ .Capabilities.APIVersions.Has "apps/v1" }}
`,
	})
	out, err := render(t, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `metadata:
  labels:
    app: demo
    release: rel
  version: 1.2.3-4.5
  ns: ns
  missing: ""
  template: demo/templates/cm.yaml in demo/templates
  has: true
`
	if got := out["demo/templates/cm.yaml"]; got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if _, ok := out["demo/templates/_helpers.tpl"]; ok {
		t.Error("partials must not be rendered")
	}
}

func TestNumbersBehaveAsUnderHelm(t *testing.T) {
	dir := writeChart(t, map[string]string{
		"templates/n.yaml": "a: {{ .Values.replicas }}\nb: {{ .Values.big }}\nc: {{ int .Values.big }}\n" +
			"d: {{ toYaml (dict \"uid\" 1000 \"f\" .Values.big) | nindent 2 }}\n",
	})
	out, err := render(t, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Values are float64 (YAML -> JSON), so a big number prints in exponent form, as helm does.
	want := "a: 2\nb: 1e+06\nc: 1000000\nd: \n  f: 1000000\n  uid: 1000\n"
	if got := out["demo/templates/n.yaml"]; got != want {
		t.Errorf("got:\n%q\nwant:\n%q", got, want)
	}
}

func TestRequiredAndFail(t *testing.T) {
	dir := writeChart(t, map[string]string{
		"templates/r.yaml": `host: {{ required "ingress.host is required" .Values.host }}`,
	})
	_, err := render(t, dir, nil)
	if err == nil || !strings.Contains(err.Error(), "ingress.host is required") {
		t.Fatalf("want the required message, got %v", err)
	}
	_, err = render(t, dir, map[string]interface{}{"host": ""})
	if err == nil {
		t.Fatal("an empty string must not satisfy required")
	}
	out, err := render(t, dir, map[string]interface{}{"host": "example.com"})
	if err != nil || out["demo/templates/r.yaml"] != "host: example.com" {
		t.Fatalf("got %q, %v", out["demo/templates/r.yaml"], err)
	}

	dir = writeChart(t, map[string]string{"templates/f.yaml": `{{ fail "no way" }}`})
	if _, err := render(t, dir, nil); err == nil || !strings.Contains(err.Error(), "no way") {
		t.Fatalf("want fail's message, got %v", err)
	}
}

func TestTplAndLookup(t *testing.T) {
	dir := writeChart(t, map[string]string{
		"templates/t.yaml": `a: {{ tpl "{{ .Values.name }}-{{ .Release.Name }}" . }}
b: {{ (lookup "v1" "Secret" "ns" "x") | len }}`,
	})
	out, err := render(t, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := out["demo/templates/t.yaml"]; got != "a: web-rel\nb: 0" {
		t.Errorf("got %q", got)
	}
}

func TestCoalesceMergesMapsAndNullDeletes(t *testing.T) {
	base := map[string]interface{}{"nested": map[string]interface{}{"keep": "a", "drop": "b"}, "x": 1.0}
	got := Coalesce(base, map[string]interface{}{
		"nested": map[string]interface{}{"drop": nil, "new": "c"}, "x": 2.0})
	nested := got["nested"].(map[string]interface{})
	if nested["keep"] != "a" || nested["new"] != "c" || got["x"] != 2.0 {
		t.Errorf("merge: %v", got)
	}
	if _, ok := nested["drop"]; ok {
		t.Error("null must delete the key")
	}
	if base["nested"].(map[string]interface{})["drop"] != "b" {
		t.Error("the base values were modified")
	}
}

func TestFilesGlobFollowsLinksAndCrossesDirectories(t *testing.T) {
	dir := writeChart(t, map[string]string{
		"templates/cm.yaml": `{{- range $p, $c := .Files.Glob "files/meta/**" }}
{{ $p }}={{ toString $c }}
{{- end }}
one={{ len (.Files.Glob "files/meta/*") }}`,
	})
	target := filepath.Join(t.TempDir(), "meta")
	if err := os.MkdirAll(filepath.Join(target, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(target, "a.yaml"), []byte("A"), 0o644)
	os.WriteFile(filepath.Join(target, "sub", "b.yaml"), []byte("B"), 0o644)
	os.MkdirAll(filepath.Join(dir, "files"), 0o755)
	if err := os.Symlink(target, filepath.Join(dir, "files", "meta")); err != nil {
		t.Fatal(err)
	}
	out, err := render(t, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "\nfiles/meta/a.yaml=A\nfiles/meta/sub/b.yaml=B\none=1"
	if got := out["demo/templates/cm.yaml"]; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSplitManifestsValidatesDocuments(t *testing.T) {
	docs, err := SplitManifests(map[string]string{
		"demo/templates/a.yaml":    "# comment only\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n\n",
		"demo/templates/NOTES.txt": "not yaml: [",
	})
	if err != nil || len(docs) != 1 || docs[0].Object["kind"] != "ConfigMap" {
		t.Fatalf("got %v, %v", docs, err)
	}
	if _, err := SplitManifests(map[string]string{"x.yaml": "apiVersion: v1\nkind: [\n"}); err == nil {
		t.Error("invalid YAML must be reported")
	}
	if _, err := SplitManifests(map[string]string{"x.yaml": "apiVersion: v1\nkind: Pod\n"}); err == nil {
		t.Error("a document without metadata.name must be reported")
	}
}
