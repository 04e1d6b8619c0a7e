// Checks over the rendered manifests: what issue 8 and docs/deploy.md promise about the
// release. Each check records every failure (not just the first) with the object it is about.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

type object = map[string]interface{}

const namespace = "synaps-runtime"

// What a values file should produce; one per --mode.
type expectations struct {
	image           string
	bundled         bool // PostgreSQL and NATS StatefulSets in the release
	migrationHook   string
	databaseSecret  string
	authSecret      string
	providersSecret string
	objectSecret    string
	natsURL         string
	objectStoreURL  string
	natsReplicas    int
	workerReplicas  int // 0 = autoscaled
	hpaMin, hpaMax  int
	concurrency     string
	externalDBCIDR  string
	monitoring      bool // monitoring.* on (render/monitoring.go)
}

func expectationsFor(mode string) (expectations, error) {
	base := expectations{
		image:           "ghcr.io/ingresslabs/synaps:0.1.0",
		bundled:         true,
		migrationHook:   "post-install,pre-upgrade",
		databaseSecret:  "synaps-database",
		authSecret:      "synaps-auth",
		providersSecret: "synaps-providers",
		objectSecret:    "synaps-object-store",
		natsURL:         "nats://synaps-nats:4222",
		objectStoreURL:  "file:///var/lib/synaps/objects",
		natsReplicas:    1,
		workerReplicas:  1,
		concurrency:     "128",
	}
	switch mode {
	case "default":
		return base, nil
	case "external": // tests/deploy/external-values.yaml
		e := base
		e.image = "registry.example.com/synaps:1.2.3"
		e.bundled = false
		e.migrationHook = "pre-install,pre-upgrade"
		e.databaseSecret = "synaps-db-external"
		e.authSecret = "synaps-auth-external"
		e.providersSecret = "synaps-providers-external"
		e.objectSecret = "synaps-s3-external"
		e.natsURL = "nats://nats.messaging.svc.cluster.local:4222"
		e.objectStoreURL = "s3://synaps-artifacts?endpoint=https://s3.eu-west-1.amazonaws.com&region=eu-west-1"
		e.natsReplicas = 0
		e.externalDBCIDR = "10.20.0.0/16"
		return e, nil
	case "scale": // tests/deploy/scale-values.yaml
		e := base
		e.natsReplicas = 3
		e.workerReplicas = 0
		e.hpaMin, e.hpaMax = 2, 20
		e.concurrency = "64"
		return e, nil
	case "monitoring": // tests/deploy/monitoring-values.yaml
		e := base
		e.monitoring = true
		return e, nil
	}
	return expectations{}, fmt.Errorf("unknown mode %q", mode)
}

// Checker runs the checks and collects failures.
type Checker struct {
	docs        []Document
	mode        string
	exp         expectations
	metadataDir string
	sourcesDir  string // src/, for the metric names (render/monitoring.go)
	current     string
	Failures    []string
	Passed      int
}

func NewChecker(docs []Document, mode, metadataDir string) *Checker {
	c := &Checker{docs: docs, mode: mode, metadataDir: metadataDir}
	exp, err := expectationsFor(mode)
	if err != nil {
		c.Failures = append(c.Failures, err.Error())
	}
	c.exp = exp
	return c
}

func (c *Checker) RunAll() {
	checks := []struct {
		name string
		run  func()
	}{
		{"objects", c.checkObjects},
		{"images-and-ports", c.checkImagesAndPorts},
		{"probes", c.checkProbes},
		{"rbac", c.checkRBAC},
		{"secrets", c.checkSecrets},
		{"pod-security", c.checkPodSecurity},
		{"storage", c.checkStorage},
		{"network-policies", c.checkNetworkPolicies},
		{"ingress", c.checkIngress},
		{"migrations", c.checkMigrationJob},
		{"hasura", c.checkHasura},
		{"workers", c.checkWorkers},
		{"monitoring", c.checkMonitoring},
	}
	for _, ch := range checks {
		c.current = ch.name
		ch.run()
	}
}

func (c *Checker) expect(ok bool, format string, args ...interface{}) bool {
	if ok {
		c.Passed++
	} else {
		c.Failures = append(c.Failures, c.current+": "+fmt.Sprintf(format, args...))
	}
	return ok
}

// --- navigation helpers ---

func at(v interface{}, keys ...string) interface{} {
	for _, k := range keys {
		m, ok := v.(map[string]interface{})
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v interface{}) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return fmt.Sprintf("%v", x)
	case bool:
		return fmt.Sprintf("%v", x)
	}
	return ""
}

func list(v interface{}) []interface{} {
	l, _ := v.([]interface{})
	return l
}

func obj(v interface{}) object {
	m, _ := v.(map[string]interface{})
	return m
}

func strList(v interface{}) []string {
	var out []string
	for _, x := range list(v) {
		out = append(out, str(x))
	}
	return out
}

func num(v interface{}) int {
	f, _ := v.(float64)
	return int(f)
}

func (c *Checker) find(kind, name string) object {
	for _, d := range c.docs {
		if d.Object["kind"] == kind && str(at(d.Object, "metadata", "name")) == name {
			return d.Object
		}
	}
	return nil
}

func (c *Checker) all(kind string) []object {
	var out []object
	for _, d := range c.docs {
		if d.Object["kind"] == kind {
			out = append(out, d.Object)
		}
	}
	return out
}

func name(o object) string { return str(at(o, "metadata", "name")) }

func ref(o object) string { return str(o["kind"]) + "/" + name(o) }

// Objects that run pods, with their pod template.
func (c *Checker) workloads() []object {
	var out []object
	for _, d := range c.docs {
		switch d.Object["kind"] {
		case "Deployment", "StatefulSet", "Job", "DaemonSet":
			out = append(out, d.Object)
		}
	}
	return out
}

func podTemplate(o object) object { return obj(at(o, "spec", "template")) }
func podSpec(o object) object     { return obj(at(o, "spec", "template", "spec")) }

func containers(o object) []object {
	var out []object
	for _, k := range []string{"initContainers", "containers"} {
		for _, x := range list(podSpec(o)[k]) {
			out = append(out, obj(x))
		}
	}
	return out
}

func container(o object, n string) object {
	for _, ct := range containers(o) {
		if str(ct["name"]) == n {
			return ct
		}
	}
	return nil
}

func env(ct object) map[string]object {
	out := map[string]object{}
	for _, e := range list(ct["env"]) {
		out[str(obj(e)["name"])] = obj(e)
	}
	return out
}

func envNames(ct object) []string {
	var out []string
	for _, e := range list(ct["env"]) {
		out = append(out, str(obj(e)["name"]))
	}
	return out
}

func labelsOf(v interface{}) map[string]string {
	out := map[string]string{}
	for k, x := range obj(v) {
		out[k] = str(x)
	}
	return out
}

func matchesSelector(sel object, labels map[string]string) bool {
	if sel == nil {
		return false
	}
	for k, v := range obj(sel["matchLabels"]) {
		if labels[k] != str(v) {
			return false
		}
	}
	for _, e := range list(sel["matchExpressions"]) {
		expr := obj(e)
		val, has := labels[str(expr["key"])]
		values := strList(expr["values"])
		in := false
		for _, v := range values {
			if v == val {
				in = true
			}
		}
		switch str(expr["operator"]) {
		case "In":
			if !has || !in {
				return false
			}
		case "NotIn":
			if has && in {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		}
	}
	return true
}

// The workload of one component (app.kubernetes.io/component).
func (c *Checker) component(comp string) object {
	for _, w := range c.workloads() {
		if labelsOf(at(podTemplate(w), "metadata", "labels"))["app.kubernetes.io/component"] == comp {
			return w
		}
	}
	return nil
}

// --- checks ---

func (c *Checker) checkObjects() {
	seen := map[string]bool{}
	for _, d := range c.docs {
		o := d.Object
		r := ref(o)
		c.expect(!seen[r], "%s is rendered twice", r)
		seen[r] = true
		want := namespace
		if c.exp.monitoring && r == "ConfigMap/synaps-dashboards" {
			want = "monitoring" // monitoring.dashboards.namespace: the Grafana sidecar's
		}
		c.expect(str(at(o, "metadata", "namespace")) == want, "%s is in namespace %q, not %s", r,
			str(at(o, "metadata", "namespace")), want)
		switch o["kind"] {
		case "ClusterRole", "ClusterRoleBinding", "PodSecurityPolicy", "Namespace":
			c.expect(false, "%s: the release must stay inside its namespace", r)
		}
		labels := labelsOf(at(o, "metadata", "labels"))
		c.expect(labels["app.kubernetes.io/name"] == "synaps" && labels["app.kubernetes.io/instance"] != "",
			"%s lacks the app.kubernetes.io name/instance labels", r)
	}
	required := []string{
		"Deployment/synaps-control-api", "Service/synaps-control-api",
		"Deployment/synaps-demo-worker", "ServiceAccount/synaps-demo-worker",
		"Role/synaps-demo-worker", "RoleBinding/synaps-demo-worker",
		"Deployment/synaps-hasura", "Service/synaps-hasura", "ConfigMap/synaps-hasura-metadata",
		"Ingress/synaps", "Job/synaps-migrate", "ServiceAccount/synaps",
		"NetworkPolicy/synaps-default-deny",
	}
	bundled := []string{"StatefulSet/synaps-postgresql", "Service/synaps-postgresql",
		"StatefulSet/synaps-nats", "Service/synaps-nats", "ConfigMap/synaps-nats-config"}
	if c.exp.bundled {
		required = append(required, bundled...)
		required = append(required, "Secret/synaps-auth", "Secret/synaps-database")
	}
	for _, r := range required {
		c.expect(seen[r], "%s is missing", r)
	}
	if !c.exp.bundled {
		for r := range seen {
			c.expect(!strings.HasPrefix(r, "StatefulSet/"), "%s rendered although PostgreSQL and NATS are external", r)
			c.expect(!strings.Contains(r, "synaps-postgresql") && !strings.Contains(r, "synaps-nats"),
				"%s rendered although PostgreSQL and NATS are external", r)
			c.expect(!strings.HasPrefix(r, "Secret/"), "%s rendered although every existingSecret is set", r)
		}
	}
}

func (c *Checker) checkImagesAndPorts() {
	for comp, args := range map[string]string{"control-api": "api", "worker": "worker", "migrate": "migrate"} {
		w := c.component(comp)
		if !c.expect(w != nil, "no workload for component %s", comp) {
			continue
		}
		cts := containers(w)
		if !c.expect(len(cts) == 1, "%s should run one container, runs %d", ref(w), len(cts)) {
			continue
		}
		c.expect(str(cts[0]["image"]) == c.exp.image, "%s runs image %q, want %q", ref(w), str(cts[0]["image"]), c.exp.image)
		c.expect(strings.Join(strList(cts[0]["args"]), " ") == args, "%s runs `synaps %s`, want `synaps %s`",
			ref(w), strings.Join(strList(cts[0]["args"]), " "), args)
		c.expect(cts[0]["command"] == nil, "%s overrides the image's entrypoint", ref(w))
	}
	api := c.find("Deployment", "synaps-control-api")
	if ct := container(api, "api"); c.expect(ct != nil, "the API container is missing") {
		ports := list(ct["ports"])
		c.expect(len(ports) == 1 && num(obj(ports[0])["containerPort"]) == 8081 && str(obj(ports[0])["name"]) == "http",
			"the API container must expose 8081 named http, has %v", ports)
		c.expect(str(env(ct)["SYNAPS_LISTEN"]["value"]) == "0.0.0.0:8081", "SYNAPS_LISTEN is %q",
			str(env(ct)["SYNAPS_LISTEN"]["value"]))
	}
	servicePorts := map[string]int{"synaps-control-api": 8081, "synaps-hasura": 8080}
	if c.exp.bundled {
		servicePorts["synaps-postgresql"] = 5432
		servicePorts["synaps-nats"] = 4222
	}
	for svcName, port := range servicePorts {
		svc := c.find("Service", svcName)
		if !c.expect(svc != nil, "Service/%s is missing", svcName) {
			continue
		}
		ports := list(at(svc, "spec", "ports"))
		c.expect(len(ports) >= 1 && num(obj(ports[0])["port"]) == port, "Service/%s should listen on %d: %v", svcName, port, ports)
		c.checkServiceTargets(svc)
	}
	for _, svc := range c.all("Service") {
		c.checkServiceTargets(svc)
	}
	// Third-party images are pinned.
	for _, w := range c.workloads() {
		for _, ct := range containers(w) {
			image := str(ct["image"])
			tag := image[strings.LastIndex(image, ":")+1:]
			c.expect(strings.Contains(image, ":") && tag != "latest" && !strings.Contains(tag, "/"),
				"%s: image %q is not pinned to a version", ref(w), image)
		}
	}
}

// A Service selects exactly one workload, and each target port exists on its containers.
func (c *Checker) checkServiceTargets(svc object) {
	sel := obj(at(svc, "spec", "selector"))
	var matched []object
	for _, w := range c.workloads() {
		if matchesSelector(object{"matchLabels": sel}, labelsOf(at(podTemplate(w), "metadata", "labels"))) {
			matched = append(matched, w)
		}
	}
	if !c.expect(len(matched) == 1, "%s selects %d workloads", ref(svc), len(matched)) {
		return
	}
	for _, p := range list(at(svc, "spec", "ports")) {
		target := obj(p)["targetPort"]
		found := false
		for _, ct := range containers(matched[0]) {
			for _, cp := range list(ct["ports"]) {
				if str(obj(cp)["name"]) == str(target) || num(obj(cp)["containerPort"]) == num(target) {
					found = true
				}
			}
		}
		c.expect(found, "%s: target port %v is not a port of %s", ref(svc), target, ref(matched[0]))
	}
}

// The container port a probe's httpGet.port names.
func probePort(ct object, probe object) int {
	p := at(probe, "httpGet", "port")
	if n := num(p); n != 0 {
		return n
	}
	for _, cp := range list(ct["ports"]) {
		if str(obj(cp)["name"]) == str(p) {
			return num(obj(cp)["containerPort"])
		}
	}
	return 0
}

func (c *Checker) checkProbes() {
	httpProbes := []struct {
		workload, container string
		port                int
		paths               map[string]string
	}{
		{"Deployment/synaps-control-api", "api", 8081,
			map[string]string{"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}},
		{"Deployment/synaps-demo-worker", "worker", 9090,
			map[string]string{"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}},
		{"Deployment/synaps-hasura", "hasura", 8080,
			map[string]string{"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/healthz"}},
	}
	for _, hp := range httpProbes {
		parts := strings.SplitN(hp.workload, "/", 2)
		ct := container(c.find(parts[0], parts[1]), hp.container)
		if !c.expect(ct != nil, "%s has no container %s", hp.workload, hp.container) {
			continue
		}
		for kind, want := range hp.paths {
			probe := obj(ct[kind])
			c.expect(str(at(probe, "httpGet", "path")) == want, "%s: %s should GET %s, has %v", hp.workload, kind, want, probe)
			c.expect(probePort(ct, probe) == hp.port, "%s: %s should use port %d", hp.workload, kind, hp.port)
		}
		c.expect(num(at(ct, "startupProbe", "failureThreshold"))*maxInt(num(at(ct, "startupProbe", "periodSeconds")), 1) >= 30,
			"%s: the startup probe allows under 30 s to start", hp.workload)
	}
	if c.exp.bundled {
		for _, sts := range []string{"synaps-postgresql", "synaps-nats"} {
			w := c.find("StatefulSet", sts)
			for _, ct := range containers(w) {
				for _, kind := range []string{"startupProbe", "livenessProbe", "readinessProbe"} {
					c.expect(ct[kind] != nil, "StatefulSet/%s: container %s has no %s", sts, str(ct["name"]), kind)
				}
			}
		}
	}
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func (c *Checker) checkRBAC() {
	role := c.find("Role", "synaps-demo-worker")
	if c.expect(role != nil, "Role/synaps-demo-worker is missing") {
		resources := map[string]bool{}
		for _, r := range list(role["rules"]) {
			rule := obj(r)
			c.expect(strings.Join(strList(rule["apiGroups"]), ",") == "", "the worker Role reaches API groups %v", rule["apiGroups"])
			for _, res := range strList(rule["resources"]) {
				c.expect(res == "pods" || res == "events", "the worker Role grants %q", res)
				resources[res] = true
			}
			for _, v := range strList(rule["verbs"]) {
				c.expect(v == "get" || v == "list" || v == "watch", "the worker Role grants verb %q (read-only: get, list, watch)", v)
			}
			c.expect(len(strList(rule["verbs"])) == 3, "the worker Role should grant get, list and watch: %v", rule["verbs"])
			c.expect(rule["resourceNames"] == nil && rule["nonResourceURLs"] == nil, "unexpected rule fields %v", rule)
		}
		c.expect(resources["pods"] && resources["events"], "the worker Role should cover pods and events: %v", resources)
	}
	rb := c.find("RoleBinding", "synaps-demo-worker")
	if c.expect(rb != nil, "RoleBinding/synaps-demo-worker is missing") {
		c.expect(str(at(rb, "roleRef", "kind")) == "Role" && str(at(rb, "roleRef", "name")) == "synaps-demo-worker",
			"the RoleBinding binds %v", rb["roleRef"])
		subjects := list(rb["subjects"])
		c.expect(len(subjects) == 1 && str(obj(subjects[0])["kind"]) == "ServiceAccount" &&
			str(obj(subjects[0])["name"]) == "synaps-demo-worker", "the RoleBinding binds %v", subjects)
	}
	for _, sa := range c.all("ServiceAccount") {
		if name(sa) == "synaps-demo-worker" {
			continue
		}
		c.expect(sa["automountServiceAccountToken"] == false, "%s should not mount its token", ref(sa))
	}
	for _, w := range c.workloads() {
		spec := podSpec(w)
		if name(w) == "synaps-demo-worker" {
			c.expect(str(spec["serviceAccountName"]) == "synaps-demo-worker", "the worker runs as %q", str(spec["serviceAccountName"]))
			c.expect(spec["automountServiceAccountToken"] == true, "the worker needs its token for the Kubernetes API")
			continue
		}
		c.expect(spec["automountServiceAccountToken"] == false, "%s: automountServiceAccountToken must be false", ref(w))
		c.expect(str(spec["serviceAccountName"]) != "synaps-demo-worker", "%s borrows the worker's account", ref(w))
	}
}

var configMapKey = regexp.MustCompile(`^[-._a-zA-Z0-9]{1,253}$`)
var secretNames = regexp.MustCompile(`(?i)(secret|token|password|passwd|api_key|access_key|credential|database_url)`)
var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// Variables that carry secrets: always from a Secret.
var secretEnv = map[string]bool{
	"SYNAPS_DATABASE_URL": true, "SYNAPS_ADMIN_TOKEN": true, "SYNAPS_JWT_SECRET": true,
	"OPENAI_API_KEY": true, "MOONSHOT_API_KEY": true, "AWS_ACCESS_KEY_ID": true,
	"AWS_SECRET_ACCESS_KEY": true, "HASURA_GRAPHQL_ADMIN_SECRET": true,
	"HASURA_GRAPHQL_DATABASE_URL": true, "HASURA_GRAPHQL_METADATA_DATABASE_URL": true,
	"POSTGRES_PASSWORD": true,
}

func (c *Checker) checkSecrets() {
	rendered := map[string]map[string]string{} // secret -> key -> value
	for _, s := range c.all("Secret") {
		values := map[string]string{}
		for k, v := range obj(s["data"]) {
			decoded, err := decodeBase64(str(v))
			c.expect(err == nil, "%s: key %s is not base64", ref(s), k)
			values[k] = decoded
		}
		for k, v := range obj(s["stringData"]) {
			values[k] = str(v)
		}
		rendered[name(s)] = values
	}
	external := map[string]bool{}
	if c.mode == "external" {
		for _, n := range []string{c.exp.databaseSecret, c.exp.authSecret, c.exp.providersSecret, c.exp.objectSecret} {
			external[n] = true
		}
	}

	for _, w := range c.workloads() {
		for _, ct := range containers(w) {
			where := ref(w) + " container " + str(ct["name"])
			c.expect(ct["envFrom"] == nil, "%s uses envFrom: secrets only through secretKeyRef", where)
			fromSecret := map[string]bool{}
			for _, e := range list(ct["env"]) {
				ev := obj(e)
				n := str(ev["name"])
				sk := obj(at(ev, "valueFrom", "secretKeyRef"))
				if sk != nil {
					fromSecret[n] = true
					sname, key := str(sk["name"]), str(sk["key"])
					if sk["optional"] != true {
						_, ok := rendered[sname][key]
						c.expect(ok || external[sname], "%s: %s reads %s/%s, which this release does not provide", where, n, sname, key)
					}
					if c.mode == "external" {
						c.expect(external[sname], "%s: %s reads Secret %s instead of the existingSecret", where, n, sname)
					}
					continue
				}
				if secretEnv[n] {
					c.expect(false, "%s: %s must come from a secretKeyRef", where, n)
					continue
				}
				if ev["value"] != nil && secretNames.MatchString(n) {
					// Allowed only as a template over secret variables: $(VAR) expansion.
					refs := varRef.FindAllStringSubmatch(str(ev["value"]), -1)
					ok := len(refs) > 0
					for _, r := range refs {
						ok = ok && fromSecret[r[1]]
					}
					c.expect(ok, "%s: %s holds a plain value; secrets come from secretKeyRef", where, n)
				}
			}
		}
	}

	// No secret value appears anywhere else in the release.
	for sname, values := range rendered {
		for key, v := range values {
			if len(v) < 8 {
				continue
			}
			for _, d := range c.docs {
				if d.Object["kind"] == "Secret" {
					continue
				}
				c.expect(!strings.Contains(d.Text, v), "the value of %s/%s appears in plain text in %s", sname, key, ref(d.Object))
			}
		}
	}

	// Least privilege: each process sees only the secrets it needs.
	forbidden := map[string][]string{
		"worker":      {"SYNAPS_ADMIN_TOKEN", "SYNAPS_JWT_SECRET", "HASURA_GRAPHQL_ADMIN_SECRET"},
		"control-api": {"OPENAI_API_KEY", "MOONSHOT_API_KEY", "HASURA_GRAPHQL_ADMIN_SECRET"},
		"migrate": {"SYNAPS_ADMIN_TOKEN", "SYNAPS_JWT_SECRET", "OPENAI_API_KEY", "MOONSHOT_API_KEY",
			"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
		"hasura": {"SYNAPS_ADMIN_TOKEN", "OPENAI_API_KEY", "MOONSHOT_API_KEY", "AWS_SECRET_ACCESS_KEY"},
	}
	for comp, names := range forbidden {
		w := c.component(comp)
		for _, ct := range containers(w) {
			e := env(ct)
			for _, n := range names {
				c.expect(e[n] == nil, "%s should not receive %s", comp, n)
			}
		}
	}
	required := map[string][]string{
		"worker":      {"SYNAPS_DATABASE_URL", "OPENAI_API_KEY", "MOONSHOT_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
		"control-api": {"SYNAPS_DATABASE_URL", "SYNAPS_ADMIN_TOKEN", "SYNAPS_JWT_SECRET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
		"migrate":     {"SYNAPS_DATABASE_URL"},
	}
	for comp, names := range required {
		for _, ct := range containers(c.component(comp)) {
			e := env(ct)
			for _, n := range names {
				c.expect(at(e[n], "valueFrom", "secretKeyRef") != nil, "%s should read %s from a Secret", comp, n)
			}
		}
	}

	if c.exp.bundled {
		auth := rendered["synaps-auth"]
		c.expect(len(auth["SYNAPS_JWT_SECRET"]) >= 32, "the generated JWT secret is shorter than 32 bytes (Hasura refuses it)")
		c.expect(auth["SYNAPS_ADMIN_TOKEN"] != "" && auth["HASURA_GRAPHQL_ADMIN_SECRET"] != "", "synaps-auth lacks generated tokens")
		c.expect(auth["SYNAPS_ADMIN_TOKEN"] != auth["HASURA_GRAPHQL_ADMIN_SECRET"], "the admin token and the Hasura admin secret must differ")
		db := rendered["synaps-database"]
		c.expect(db["POSTGRES_PASSWORD"] != "" &&
			db["SYNAPS_DATABASE_URL"] == "postgresql://synaps:"+db["POSTGRES_PASSWORD"]+"@synaps-postgresql:5432/synaps",
			"SYNAPS_DATABASE_URL does not point at the bundled PostgreSQL with its password")
		_, providers := rendered["synaps-providers"]
		c.expect(!providers, "Secret/synaps-providers rendered without any provider key")
	}
}

func decodeBase64(s string) (string, error) {
	var out []byte
	err := json.Unmarshal([]byte(`"`+s+`"`), &out) // JSON decodes []byte from base64
	return string(out), err
}

func (c *Checker) checkPodSecurity() {
	for _, w := range c.workloads() {
		spec := podSpec(w)
		r := ref(w)
		psc := obj(spec["securityContext"])
		c.expect(psc["runAsNonRoot"] == true, "%s: pod securityContext.runAsNonRoot must be true", r)
		c.expect(num(psc["runAsUser"]) > 0, "%s: pod runs as root (runAsUser %v)", r, psc["runAsUser"])
		c.expect(str(at(psc, "seccompProfile", "type")) == "RuntimeDefault", "%s: pod seccompProfile must be RuntimeDefault", r)
		for _, k := range []string{"hostNetwork", "hostPID", "hostIPC"} {
			c.expect(spec[k] == nil || spec[k] == false, "%s: %s", r, k)
		}
		volumes := map[string]object{}
		for _, v := range list(spec["volumes"]) {
			volumes[str(obj(v)["name"])] = obj(v)
			c.expect(obj(v)["hostPath"] == nil, "%s: hostPath volume %s", r, str(obj(v)["name"]))
		}
		for _, ct := range containers(w) {
			where := r + " container " + str(ct["name"])
			sc := obj(ct["securityContext"])
			c.expect(sc["allowPrivilegeEscalation"] == false, "%s: allowPrivilegeEscalation must be false", where)
			c.expect(sc["readOnlyRootFilesystem"] == true, "%s: readOnlyRootFilesystem must be true", where)
			c.expect(sc["privileged"] == nil || sc["privileged"] == false, "%s: privileged", where)
			c.expect(sc["runAsNonRoot"] == true || psc["runAsNonRoot"] == true, "%s: runAsNonRoot", where)
			c.expect(strings.Join(strList(at(sc, "capabilities", "drop")), ",") == "ALL", "%s: capabilities must drop ALL", where)
			c.expect(at(sc, "capabilities", "add") == nil, "%s: adds capabilities", where)
			c.expect(str(at(sc, "seccompProfile", "type")) == "RuntimeDefault" || str(at(psc, "seccompProfile", "type")) == "RuntimeDefault",
				"%s: seccomp", where)
			tmp := false
			for _, m := range list(ct["volumeMounts"]) {
				mount := obj(m)
				if str(mount["mountPath"]) == "/tmp" {
					tmp = volumes[str(mount["name"])]["emptyDir"] != nil
				}
			}
			c.expect(tmp, "%s: /tmp must be an emptyDir (the root filesystem is read-only)", where)
			for _, kind := range []string{"requests", "limits"} {
				for _, res := range []string{"cpu", "memory"} {
					c.expect(at(ct, "resources", kind, res) != nil, "%s: resources.%s.%s is not set", where, kind, res)
				}
			}
		}
	}
}

func (c *Checker) checkStorage() {
	pvcSize := func(sts, claim string) string {
		for _, t := range list(at(c.find("StatefulSet", sts), "spec", "volumeClaimTemplates")) {
			if str(at(t, "metadata", "name")) == claim {
				return str(at(t, "spec", "resources", "requests", "storage"))
			}
		}
		return ""
	}
	objectsPVC := c.find("PersistentVolumeClaim", "synaps-objects")
	if c.exp.bundled {
		c.expect(pvcSize("synaps-postgresql", "data") == "100Gi", "PostgreSQL's volume is %q, want 100Gi", pvcSize("synaps-postgresql", "data"))
		c.expect(pvcSize("synaps-nats", "jetstream") == "60Gi", "NATS's JetStream volume is %q, want 60Gi", pvcSize("synaps-nats", "jetstream"))
		pg := c.find("StatefulSet", "synaps-postgresql")
		c.expect(num(at(pg, "spec", "replicas")) == 1, "PostgreSQL runs %v replicas", at(pg, "spec", "replicas"))
		nats := c.find("StatefulSet", "synaps-nats")
		c.expect(num(at(nats, "spec", "replicas")) == c.exp.natsReplicas, "NATS runs %v replicas, want %d", at(nats, "spec", "replicas"), c.exp.natsReplicas)
		conf := str(at(c.find("ConfigMap", "synaps-nats-config"), "data", "nats.conf"))
		c.expect(strings.Contains(conf, "jetstream {") && strings.Contains(conf, "store_dir: /data"), "NATS config lacks JetStream on /data:\n%s", conf)
		routes := strings.Count(conf, ".synaps-nats-headless.synaps-runtime.svc.cluster.local:6222")
		if c.exp.natsReplicas > 1 {
			c.expect(strings.Contains(conf, "cluster {") && routes == c.exp.natsReplicas,
				"a %d-node NATS cluster needs %d routes, config has %d:\n%s", c.exp.natsReplicas, c.exp.natsReplicas, routes, conf)
		} else {
			c.expect(!strings.Contains(conf, "cluster {"), "a single NATS server has a cluster block")
		}
		c.expect(str(at(env(container(c.find("Deployment", "synaps-control-api"), "api"))["SYNAPS_NATS_URL"], "value")) == c.exp.natsURL,
			"the API's SYNAPS_NATS_URL is not %s", c.exp.natsURL)
	}
	for _, comp := range []string{"control-api", "worker"} {
		w := c.component(comp)
		for _, ct := range containers(w) {
			e := env(ct)
			c.expect(str(e["SYNAPS_OBJECT_STORE"]["value"]) == c.exp.objectStoreURL, "%s: SYNAPS_OBJECT_STORE is %q, want %q", comp,
				str(e["SYNAPS_OBJECT_STORE"]["value"]), c.exp.objectStoreURL)
			c.expect(str(e["SYNAPS_NATS_URL"]["value"]) == c.exp.natsURL, "%s: SYNAPS_NATS_URL is %q, want %q", comp,
				str(e["SYNAPS_NATS_URL"]["value"]), c.exp.natsURL)
			// The wakeup stream is replicated across a NATS cluster, so it survives a node loss.
			wantReplicas := ""
			if c.exp.bundled && c.exp.natsReplicas > 1 {
				wantReplicas = "3"
			}
			c.expect(str(e["SYNAPS_NATS_STREAM_REPLICAS"]["value"]) == wantReplicas,
				"%s: SYNAPS_NATS_STREAM_REPLICAS is %q, want %q", comp, str(e["SYNAPS_NATS_STREAM_REPLICAS"]["value"]), wantReplicas)
			mounted := false
			for _, m := range list(ct["volumeMounts"]) {
				mounted = mounted || str(obj(m)["mountPath"]) == "/var/lib/synaps/objects"
			}
			fileStore := strings.HasPrefix(c.exp.objectStoreURL, "file://")
			c.expect(mounted == fileStore, "%s: objects volume mounted=%v with store %s", comp, mounted, c.exp.objectStoreURL)
		}
	}
	if strings.HasPrefix(c.exp.objectStoreURL, "file://") {
		c.expect(objectsPVC != nil, "the file object store needs PersistentVolumeClaim/synaps-objects")
	} else {
		c.expect(objectsPVC == nil && len(c.all("PersistentVolumeClaim")) == 0, "no volumes are needed with S3")
	}
}

// --- network policy evaluation ---

type peer struct {
	desc      string
	nsLabels  map[string]string
	podLabels map[string]string
	ip        string // set for addresses outside the cluster's pods
}

func inCIDR(ip, cidr string) bool {
	_, n, err := net.ParseCIDR(cidr)
	return err == nil && n.Contains(net.ParseIP(ip))
}

func (c *Checker) peerMatches(p object, target peer, policyNamespace string) bool {
	if ipb := obj(p["ipBlock"]); ipb != nil {
		if target.ip == "" || !inCIDR(target.ip, str(ipb["cidr"])) {
			return false
		}
		for _, ex := range strList(ipb["except"]) {
			if inCIDR(target.ip, ex) {
				return false
			}
		}
		return true
	}
	if target.ip != "" {
		return false
	}
	nsSel, hasNs := p["namespaceSelector"]
	podSel, hasPod := p["podSelector"]
	if hasNs {
		if !matchesSelector(obj(nsSel), target.nsLabels) && len(obj(nsSel)) > 0 {
			return false
		}
	} else if target.nsLabels["kubernetes.io/metadata.name"] != policyNamespace {
		return false
	}
	if hasPod && len(obj(podSel)) > 0 && !matchesSelector(obj(podSel), target.podLabels) {
		return false
	}
	return true
}

func portMatches(rulePorts []interface{}, port int, proto string) bool {
	if len(rulePorts) == 0 {
		return true
	}
	for _, p := range rulePorts {
		po := obj(p)
		rp := po["protocol"]
		if rp == nil {
			rp = "TCP"
		}
		if str(rp) == proto && (po["port"] == nil || num(po["port"]) == port) {
			return true
		}
	}
	return false
}

// allowed evaluates the release's NetworkPolicies for one connection.
func (c *Checker) allowed(src, dst peer, port int, proto string) bool {
	return c.direction(src, dst, port, proto, "Egress", "egress", "to") &&
		c.direction(dst, src, port, proto, "Ingress", "ingress", "from")
}

// direction: may `self` send (Egress) to / receive (Ingress) from `other`?
func (c *Checker) direction(self, other peer, port int, proto, policyType, rulesKey, peersKey string) bool {
	if self.ip != "" || self.nsLabels["kubernetes.io/metadata.name"] != namespace {
		return true // not our pod: not governed by these policies
	}
	isolated := false
	for _, np := range c.all("NetworkPolicy") {
		if !matchesSelector(obj(at(np, "spec", "podSelector")), self.podLabels) && len(obj(at(np, "spec", "podSelector"))) > 0 {
			continue
		}
		types := strList(at(np, "spec", "policyTypes"))
		has := false
		for _, t := range types {
			has = has || t == policyType
		}
		if !has {
			continue
		}
		isolated = true
		for _, r := range list(at(np, "spec", rulesKey)) {
			rule := obj(r)
			if !portMatches(list(rule["ports"]), port, proto) {
				continue
			}
			peers := list(rule[peersKey])
			if len(peers) == 0 {
				return true
			}
			for _, p := range peers {
				if c.peerMatches(obj(p), other, namespace) {
					return true
				}
			}
		}
	}
	return !isolated
}

func (c *Checker) podPeer(comp string) peer {
	w := c.component(comp)
	return peer{desc: comp, nsLabels: map[string]string{"kubernetes.io/metadata.name": namespace},
		podLabels: labelsOf(at(podTemplate(w), "metadata", "labels"))}
}

func (c *Checker) checkNetworkPolicies() {
	deny := c.find("NetworkPolicy", "synaps-default-deny")
	if !c.expect(deny != nil, "no default-deny NetworkPolicy") {
		return
	}
	c.expect(strings.Join(strList(at(deny, "spec", "policyTypes")), ",") == "Ingress,Egress" &&
		at(deny, "spec", "ingress") == nil && at(deny, "spec", "egress") == nil,
		"synaps-default-deny must deny both directions with no rules")
	for _, w := range c.workloads() {
		labels := labelsOf(at(podTemplate(w), "metadata", "labels"))
		c.expect(matchesSelector(obj(at(deny, "spec", "podSelector")), labels), "%s is not covered by the default deny", ref(w))
	}

	// Shape: Kubernetes refuses peers without a selector or ipBlock, and unknown fields.
	for _, np := range c.all("NetworkPolicy") {
		for _, dir := range [][2]string{{"ingress", "from"}, {"egress", "to"}} {
			for _, r := range list(at(np, "spec", dir[0])) {
				for k := range obj(r) {
					c.expect(k == dir[1] || k == "ports", "%s: unknown %s rule field %q", ref(np), dir[0], k)
				}
				for _, p := range list(obj(r)[dir[1]]) {
					po := obj(p)
					c.expect(len(po) > 0, "%s: empty peer", ref(np))
					for k := range po {
						c.expect(k == "podSelector" || k == "namespaceSelector" || k == "ipBlock",
							"%s: peer field %q is not a selector or ipBlock", ref(np), k)
					}
					if ipb := obj(po["ipBlock"]); ipb != nil {
						_, _, err := net.ParseCIDR(str(ipb["cidr"]))
						c.expect(err == nil && len(po) == 1, "%s: bad ipBlock %v", ref(np), ipb)
					}
				}
				for _, p := range list(obj(r)["ports"]) {
					proto := str(obj(p)["protocol"])
					c.expect(num(obj(p)["port"]) > 0 && (proto == "TCP" || proto == "UDP"), "%s: bad port %v", ref(np), p)
				}
			}
		}
	}

	traefik := peer{desc: "traefik", nsLabels: map[string]string{"kubernetes.io/metadata.name": "traefik"},
		podLabels: map[string]string{"app.kubernetes.io/name": "traefik"}}
	dns := peer{desc: "kube-dns", nsLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"},
		podLabels: map[string]string{"k8s-app": "kube-dns"}}
	otherPod := peer{desc: "a pod of another namespace", nsLabels: map[string]string{"kubernetes.io/metadata.name": "default"},
		podLabels: map[string]string{"app": "curious"}}
	provider := peer{desc: "api.openai.com", ip: "162.159.140.245"}
	kubeAPI := peer{desc: "the Kubernetes API", ip: "10.96.0.1"}

	api, worker, hasura, migrate := c.podPeer("control-api"), c.podPeer("worker"), c.podPeer("hasura"), c.podPeer("migrate")
	var pg, nats peer
	pgPort, natsPort := 5432, 4222
	if c.exp.bundled {
		pg, nats = c.podPeer("postgresql"), c.podPeer("nats")
	} else {
		pg = peer{desc: "external PostgreSQL", ip: "10.20.3.4"}
		nats = peer{desc: "external NATS", ip: "10.30.0.9"}
	}

	type flow struct {
		src, dst peer
		port     int
		proto    string
		want     bool
	}
	flows := []flow{
		// The seed's diagram.
		{traefik, api, 8081, "TCP", true},
		{traefik, hasura, 8080, "TCP", true},
		{api, pg, pgPort, "TCP", true},
		{api, nats, natsPort, "TCP", true},
		{worker, pg, pgPort, "TCP", true},
		{worker, nats, natsPort, "TCP", true},
		{worker, provider, 443, "TCP", true},
		{worker, kubeAPI, 443, "TCP", true},
		{hasura, pg, pgPort, "TCP", true},
		{migrate, pg, pgPort, "TCP", true},
		{api, dns, 53, "UDP", true},
		{worker, dns, 53, "UDP", true},
		{hasura, dns, 53, "TCP", true},
		// Everything else stays closed.
		{otherPod, api, 8081, "TCP", false},
		{otherPod, hasura, 8080, "TCP", false},
		{traefik, worker, 8081, "TCP", false},
		{api, worker, 8081, "TCP", false},
		{hasura, nats, natsPort, "TCP", false},
		{hasura, provider, 443, "TCP", false},
		{migrate, provider, 443, "TCP", false},
		{migrate, nats, natsPort, "TCP", false},
		{api, kubeAPI, 6443, "TCP", false},
		{worker, provider, 80, "TCP", false},
	}
	if c.exp.bundled {
		flows = append(flows,
			flow{traefik, pg, 5432, "TCP", false},
			flow{otherPod, pg, 5432, "TCP", false},
			flow{otherPod, nats, 4222, "TCP", false},
			flow{pg, provider, 443, "TCP", false},
			flow{nats, provider, 443, "TCP", false},
			flow{worker, pg, 6432, "TCP", false},
		)
		if c.exp.natsReplicas > 1 {
			flows = append(flows, flow{nats, nats, 6222, "TCP", true})
			// scale-values.yaml lets the monitoring namespace scrape the workers' metrics.
			prometheus := peer{desc: "prometheus", nsLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"},
				podLabels: map[string]string{"app": "prometheus"}}
			flows = append(flows, flow{prometheus, worker, 9090, "TCP", true}, flow{prometheus, worker, 8081, "TCP", false},
				flow{otherPod, worker, 9090, "TCP", false})
		} else {
			flows = append(flows, flow{otherPod, worker, 9090, "TCP", false})
		}
	} else {
		flows = append(flows, flow{worker, peer{desc: "a database outside 10.20.0.0/16", ip: "192.168.9.9"}, 5432, "TCP", false})
	}
	for _, f := range flows {
		got := c.allowed(f.src, f.dst, f.port, f.proto)
		verb := "allowed"
		if !f.want {
			verb = "denied"
		}
		c.expect(got == f.want, "%s -> %s:%d/%s should be %s", f.src.desc, f.dst.desc, f.port, f.proto, verb)
	}
}

func (c *Checker) checkIngress() {
	ing := c.find("Ingress", "synaps")
	if !c.expect(ing != nil, "Ingress/synaps is missing") {
		return
	}
	c.expect(str(at(ing, "spec", "ingressClassName")) == "traefik", "ingressClassName is %q, want traefik", str(at(ing, "spec", "ingressClassName")))
	backends := map[string]string{}
	for _, r := range list(at(ing, "spec", "rules")) {
		for _, p := range list(at(r, "http", "paths")) {
			svc := str(at(p, "backend", "service", "name"))
			port := at(p, "backend", "service", "port")
			backends[str(obj(r)["host"])+str(obj(p)["path"])] = svc + ":" + str(obj(port)["name"]) + str(obj(port)["number"])
			s := c.find("Service", svc)
			c.expect(s != nil, "the Ingress routes to missing Service %s", svc)
		}
	}
	c.expect(backends["synaps.example.com/"] == "synaps-control-api:http", "the API host routes to %q", backends["synaps.example.com/"])
	c.expect(backends["graphql.synaps.example.com/v1/graphql"] == "synaps-hasura:http", "GraphQL routes to %q", backends["graphql.synaps.example.com/v1/graphql"])
	c.expect(len(backends) == 2, "the Ingress exposes more than the API and /v1/graphql: %v", backends)
}

func (c *Checker) checkMigrationJob() {
	job := c.find("Job", "synaps-migrate")
	if !c.expect(job != nil, "Job/synaps-migrate is missing") {
		return
	}
	hook := str(at(job, "metadata", "annotations", "helm.sh/hook"))
	c.expect(hook == c.exp.migrationHook, "the migration hook is %q, want %q", hook, c.exp.migrationHook)
	c.expect(strings.Contains(str(at(job, "metadata", "annotations", "helm.sh/hook-delete-policy")), "before-hook-creation"),
		"the migration Job must be replaced on every run (hook-delete-policy before-hook-creation)")
	c.expect(str(podSpec(job)["restartPolicy"]) == "Never", "the migration pod should not restart in place")
	c.expect(num(at(job, "spec", "backoffLimit")) >= 3, "the migration Job gives up too soon")
	c.expect(podSpec(job)["serviceAccountName"] == nil, "a pre-install hook cannot use the release's ServiceAccount (it does not exist yet)")
}

func (c *Checker) checkHasura() {
	dep := c.find("Deployment", "synaps-hasura")
	cm := c.find("ConfigMap", "synaps-hasura-metadata")
	if !c.expect(dep != nil && cm != nil, "Hasura's Deployment or metadata ConfigMap is missing") {
		return
	}
	// The schema exists before Hasura applies metadata that tracks it.
	inits := list(podSpec(dep)["initContainers"])
	c.expect(len(inits) == 1 && str(obj(inits[0])["image"]) == c.exp.image &&
		strings.Join(strList(obj(inits[0])["args"]), " ") == "migrate",
		"Hasura should start after `synaps migrate` (an init container with the synaps image)")
	ct := container(dep, "hasura")
	c.expect(strings.HasSuffix(str(ct["image"]), ".cli-migrations-v3"), "Hasura's image %q does not apply metadata at start", str(ct["image"]))
	e := env(ct)
	for _, n := range []string{"HASURA_GRAPHQL_DATABASE_URL", "HASURA_GRAPHQL_METADATA_DATABASE_URL"} {
		c.expect(str(at(e[n], "valueFrom", "secretKeyRef", "name")) == c.exp.databaseSecret &&
			str(at(e[n], "valueFrom", "secretKeyRef", "key")) == "SYNAPS_DATABASE_URL", "%s should come from %s", n, c.exp.databaseSecret)
	}
	c.expect(str(at(e["HASURA_GRAPHQL_ADMIN_SECRET"], "valueFrom", "secretKeyRef", "name")) == c.exp.authSecret,
		"the Hasura admin secret should come from %s", c.exp.authSecret)

	// The JWT config: HS256 with the API's secret, issuer and audience.
	names := envNames(ct)
	jwtIdx, secretIdx := -1, -1
	for i, n := range names {
		if n == "HASURA_GRAPHQL_JWT_SECRET" {
			jwtIdx = i
		}
		if n == "SYNAPS_JWT_SECRET" {
			secretIdx = i
		}
	}
	c.expect(secretIdx >= 0 && secretIdx < jwtIdx, "SYNAPS_JWT_SECRET must be defined before HASURA_GRAPHQL_JWT_SECRET for $(...) expansion")
	c.expect(str(at(e["SYNAPS_JWT_SECRET"], "valueFrom", "secretKeyRef", "name")) == c.exp.authSecret &&
		str(at(e["SYNAPS_JWT_SECRET"], "valueFrom", "secretKeyRef", "key")) == "SYNAPS_JWT_SECRET", "Hasura's JWT key should be the API's")
	expanded := strings.ReplaceAll(str(e["HASURA_GRAPHQL_JWT_SECRET"]["value"]), "$(SYNAPS_JWT_SECRET)", "0123456789abcdef0123456789abcdef")
	var jwt map[string]interface{}
	if c.expect(json.Unmarshal([]byte(expanded), &jwt) == nil, "HASURA_GRAPHQL_JWT_SECRET is not JSON: %s", expanded) {
		c.expect(jwt["type"] == "HS256" && jwt["key"] == "0123456789abcdef0123456789abcdef" && jwt["issuer"] == "synaps" &&
			jwt["audience"] == "synaps" && jwt["claims_namespace"] == "https://hasura.io/jwt/claims",
			"HASURA_GRAPHQL_JWT_SECRET does not match the API's tokens: %v", jwt)
		apiEnv := env(container(c.find("Deployment", "synaps-control-api"), "api"))
		c.expect(str(apiEnv["SYNAPS_JWT_ISSUER"]["value"]) == jwt["issuer"] && str(apiEnv["SYNAPS_JWT_AUDIENCE"]["value"]) == jwt["audience"],
			"the API and Hasura disagree on the JWT issuer or audience")
	}

	// The ConfigMap carries exactly deploy/hasura/metadata, and the volume rebuilds its tree.
	data := obj(cm["data"])
	for key := range data {
		c.expect(configMapKey.MatchString(key), "ConfigMap key %q is not valid in Kubernetes", key)
	}
	files := map[string]string{}
	if c.metadataDir != "" {
		err := filepath.Walk(c.metadataDir, func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(c.metadataDir, p)
			content, err := os.ReadFile(p)
			files[filepath.ToSlash(rel)] = string(content)
			return err
		})
		c.expect(err == nil, "reading %s: %v", c.metadataDir, err)
		c.expect(len(files) > 0 && len(files) == len(data), "the ConfigMap has %d files, %s has %d", len(data), c.metadataDir, len(files))
	}
	mountPath := ""
	for _, m := range list(ct["volumeMounts"]) {
		if str(obj(m)["name"]) == "metadata" {
			mountPath = str(obj(m)["mountPath"])
		}
	}
	c.expect(mountPath != "" && mountPath == str(e["HASURA_GRAPHQL_METADATA_DIR"]["value"]),
		"HASURA_GRAPHQL_METADATA_DIR (%q) is not where the metadata is mounted (%q)", str(e["HASURA_GRAPHQL_METADATA_DIR"]["value"]), mountPath)
	var items []interface{}
	for _, v := range list(podSpec(dep)["volumes"]) {
		if str(obj(v)["name"]) == "metadata" {
			c.expect(str(at(v, "configMap", "name")) == "synaps-hasura-metadata", "the metadata volume is not the ConfigMap")
			items = list(at(v, "configMap", "items"))
		}
	}
	paths := map[string]bool{}
	for _, it := range items {
		key, p := str(obj(it)["key"]), str(obj(it)["path"])
		_, ok := data[key]
		c.expect(ok, "volume item %s is not a key of the ConfigMap", key)
		paths[p] = true
		if c.metadataDir != "" {
			c.expect(files[p] == str(data[key]), "%s in the ConfigMap differs from %s/%s", key, c.metadataDir, p)
		}
	}
	c.expect(len(items) == len(data), "%d ConfigMap keys but %d volume items", len(data), len(items))
	for _, p := range []string{"version.yaml", "databases/databases.yaml", "databases/default/tables/tables.yaml",
		"databases/default/tables/synaps_runs.yaml", "databases/default/tables/synaps_ledger_events.yaml"} {
		c.expect(paths[p], "Hasura would not see %s", p)
	}
}

// Every variable the chart sets on Synaps containers is one the binary reads.
var knownSynapsEnv = map[string]bool{
	"SYNAPS_DATABASE_URL": true, "SYNAPS_NATS_URL": true, "SYNAPS_LISTEN": true,
	"SYNAPS_OBJECT_STORE": true, "SYNAPS_ADMIN_TOKEN": true, "SYNAPS_JWT_SECRET": true,
	"SYNAPS_WORKER_CONCURRENCY": true, "SYNAPS_QUEUES": true, "SYNAPS_DRAIN_SECONDS": true,
	"SYNAPS_LOG_LEVEL": true, "POD_NAME": true, "POD_NAMESPACE": true, "OPENAI_API_KEY": true,
	"MOONSHOT_API_KEY": true, "AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true,
	"SYNAPS_JWT_ISSUER": true, "SYNAPS_JWT_AUDIENCE": true, "SYNAPS_NATS_STREAM_REPLICAS": true,
	"SYNAPS_WORKER_LISTEN": true,
}

func (c *Checker) checkWorkers() {
	for _, comp := range []string{"control-api", "worker", "migrate"} {
		for _, ct := range containers(c.component(comp)) {
			e := env(ct)
			for _, n := range envNames(ct) {
				c.expect(knownSynapsEnv[n], "%s sets %s, which synaps does not read", comp, n)
			}
			c.expect(str(at(e["POD_NAME"], "valueFrom", "fieldRef", "fieldPath")) == "metadata.name", "%s: POD_NAME from the downward API", comp)
			c.expect(str(at(e["POD_NAMESPACE"], "valueFrom", "fieldRef", "fieldPath")) == "metadata.namespace", "%s: POD_NAMESPACE from the downward API", comp)
		}
	}
	w := c.find("Deployment", "synaps-demo-worker")
	if !c.expect(w != nil, "Deployment/synaps-demo-worker is missing") {
		return
	}
	e := env(container(w, "worker"))
	c.expect(str(e["SYNAPS_WORKER_CONCURRENCY"]["value"]) == c.exp.concurrency, "SYNAPS_WORKER_CONCURRENCY is %q, want %s",
		str(e["SYNAPS_WORKER_CONCURRENCY"]["value"]), c.exp.concurrency)
	c.expect(str(e["SYNAPS_QUEUES"]["value"]) != "", "SYNAPS_QUEUES is empty")
	drain, _ := parseInt(str(e["SYNAPS_DRAIN_SECONDS"]["value"]))
	c.expect(num(podSpec(w)["terminationGracePeriodSeconds"]) > drain, "the grace period does not cover the drain time")
	hpas := c.all("HorizontalPodAutoscaler")
	if c.exp.workerReplicas > 0 {
		c.expect(num(at(w, "spec", "replicas")) == c.exp.workerReplicas, "worker replicas %v, want %d", at(w, "spec", "replicas"), c.exp.workerReplicas)
		c.expect(len(hpas) == 0, "an HPA is rendered although autoscaling is off")
		return
	}
	c.expect(at(w, "spec", "replicas") == nil, "with an HPA the Deployment must not set replicas (they would fight)")
	if c.expect(len(hpas) == 1, "want one HPA, have %d", len(hpas)) {
		h := hpas[0]
		c.expect(str(h["apiVersion"]) == "autoscaling/v2", "HPA apiVersion %v", h["apiVersion"])
		c.expect(str(at(h, "spec", "scaleTargetRef", "kind")) == "Deployment" && str(at(h, "spec", "scaleTargetRef", "name")) == "synaps-demo-worker",
			"the HPA scales %v", at(h, "spec", "scaleTargetRef"))
		c.expect(num(at(h, "spec", "minReplicas")) == c.exp.hpaMin && num(at(h, "spec", "maxReplicas")) == c.exp.hpaMax,
			"HPA bounds %v..%v, want %d..%d", at(h, "spec", "minReplicas"), at(h, "spec", "maxReplicas"), c.exp.hpaMin, c.exp.hpaMax)
	}
}

func parseInt(s string) (int, error) {
	var n int
	_, err := fmt.Sscanf(s, "%d", &n)
	return n, err
}
