// synaps-chart renders deploy/helm/synaps without helm (see engine.go) and checks the result
// (see checks.go). Built offline in GOPATH mode from Debian's Go packages by the test build.
//
//	synaps-chart render --chart DIR [--values FILE]... [--namespace NS] [--release NAME]
//	    prints the manifests like `helm template`
//	synaps-chart check --chart DIR --mode default|external|scale|monitoring --metadata DIR
//	    [--sources DIR] [--values FILE]... [--out FILE]
//	    renders, writes the manifests to --out, checks them; exit 1 listing every failure
//	synaps-chart promql --chart DIR [--values FILE]... --out DIR
//	    writes the alerts and the dashboard queries as rule files for promtool (monitoring.go)
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "render" && os.Args[1] != "check" && os.Args[1] != "promql") {
		fmt.Fprintln(os.Stderr, "usage: synaps-chart render|check|promql --chart DIR [--values FILE]... (see main.go)")
		os.Exit(2)
	}
	verb := os.Args[1]
	fs := flag.NewFlagSet(verb, flag.ExitOnError)
	chartDir := fs.String("chart", "", "chart directory")
	var values valueFiles
	fs.Var(&values, "values", "values file (repeatable; later files win)")
	namespace := fs.String("namespace", "default", "release namespace (helm --namespace)")
	release := fs.String("release", "synaps", "release name")
	upgrade := fs.Bool("upgrade", false, "render as an upgrade")
	mode := fs.String("mode", "default", "what to expect: default, external, scale or monitoring")
	metadata := fs.String("metadata", "", "deploy/hasura/metadata, to compare the ConfigMap with")
	out := fs.String("out", "", "also write the manifests here (promql: the directory of the rule files)")
	sources := fs.String("sources", "", "src/, whose registered metric names dashboards and alerts may use")
	fs.Parse(os.Args[2:])
	if *chartDir == "" {
		fmt.Fprintln(os.Stderr, "--chart is required")
		os.Exit(2)
	}

	docs, err := renderChart(*chartDir, values, Release{Name: *release, Namespace: *namespace,
		IsUpgrade: *upgrade, Revision: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
	if verb == "promql" {
		if err := WritePromQL(docs, *out); err != nil {
			fmt.Fprintln(os.Stderr, "promql:", err)
			os.Exit(1)
		}
		return
	}
	manifests := WriteManifests(docs)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(manifests), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if verb == "render" {
		fmt.Print(manifests)
		return
	}

	c := NewChecker(docs, *mode, *metadata)
	c.sourcesDir = *sources
	c.RunAll()
	if len(c.Failures) > 0 {
		fmt.Fprintf(os.Stderr, "%d chart check(s) failed (mode %s; manifests in %s):\n", len(c.Failures),
			*mode, *out)
		for _, f := range c.Failures {
			fmt.Fprintln(os.Stderr, "  -", f)
		}
		os.Exit(1)
	}
	fmt.Printf("chart %s: %d documents, %d checks passed (mode %s)\n", *chartDir, len(docs), c.Passed,
		*mode)
}

func renderChart(dir string, valueFiles []string, rel Release) ([]Document, error) {
	chart, err := LoadChart(dir)
	if err != nil {
		return nil, err
	}
	values := chart.Values
	for _, f := range valueFiles {
		override, err := ReadValuesFile(f)
		if err != nil {
			return nil, err
		}
		values = Coalesce(values, override)
	}
	rendered, err := Render(chart, values, rel)
	if err != nil {
		return nil, err
	}
	return SplitManifests(rendered)
}
