// Package knative is the end-to-end suite for jobflow on a Knative cluster
// (kind: make kind-up knative-install deploy e2e). It sends jobs through
// the cluster's ingress as HTTP and CloudEvent POSTs, checks the results in
// PostgreSQL, ClickHouse and the query function, the unread counters, and
// scale-to-zero and scale-out under hey load.
//
// Without JOBFLOW_E2E_KUBECONFIG the cluster tests skip (this machine and
// CI have no cluster); the offline tests of the package still run.
package knative

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
)

// Env is the suite's configuration.
type Env struct {
	Kubeconfig string // JOBFLOW_E2E_KUBECONFIG
	Ingress    string // JOBFLOW_E2E_INGRESS: Kourier's address (default http://127.0.0.1:31080)
	Namespace  string // JOBFLOW_E2E_NAMESPACE (default jobflow)
	Hey        string // JOBFLOW_E2E_HEY: the hey load generator (default: hey on PATH)
}

// EnvFromOS reads Env; ok is false when no kubeconfig is given.
func EnvFromOS() (Env, bool) {
	e := Env{
		Kubeconfig: os.Getenv("JOBFLOW_E2E_KUBECONFIG"),
		Ingress:    os.Getenv("JOBFLOW_E2E_INGRESS"),
		Namespace:  os.Getenv("JOBFLOW_E2E_NAMESPACE"),
		Hey:        os.Getenv("JOBFLOW_E2E_HEY"),
	}
	if e.Ingress == "" {
		e.Ingress = "http://127.0.0.1:31080"
	}
	if e.Namespace == "" {
		e.Namespace = "jobflow"
	}
	if e.Hey == "" {
		e.Hey = "hey"
	}
	return e, e.Kubeconfig != ""
}

// Resources the suite reads.
var (
	KService    = schema.GroupVersionResource{Group: "serving.knative.dev", Version: "v1", Resource: "services"}
	KafkaSource = schema.GroupVersionResource{Group: "sources.knative.dev", Version: "v1", Resource: "kafkasources"}
	KafkaSink   = schema.GroupVersionResource{Group: "eventing.knative.dev", Version: "v1alpha1", Resource: "kafkasinks"}
	SinkBinding = schema.GroupVersionResource{Group: "sources.knative.dev", Version: "v1", Resource: "sinkbindings"}
	Broker      = schema.GroupVersionResource{Group: "eventing.knative.dev", Version: "v1", Resource: "brokers"}
	KafkaTopic  = schema.GroupVersionResource{Group: "kafka.strimzi.io", Version: "v1beta2", Resource: "kafkatopics"}
)

// Cluster is a connection to the cluster under test.
type Cluster struct {
	Env
	cfg  *rest.Config
	Kube kubernetes.Interface
	Dyn  dynamic.Interface
	HTTP *http.Client
}

// Connect builds clients from the kubeconfig and checks the API server answers.
func Connect(ctx context.Context, e Env) (*Cluster, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", e.Kubeconfig, err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := kube.Discovery().ServerVersion(); err != nil {
		return nil, fmt.Errorf("cluster of %s does not answer: %w", e.Kubeconfig, err)
	}
	return &Cluster{Env: e, cfg: cfg, Kube: kube, Dyn: dyn, HTTP: &http.Client{Timeout: 60 * time.Second}}, nil
}

// Ready reports whether obj's Ready condition is True, with its message.
func Ready(obj *unstructured.Unstructured) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			return m["status"] == "True", fmt.Sprint(m["reason"], ": ", m["message"])
		}
	}
	return false, "no Ready condition"
}

// Get returns one object of gvr in the suite's namespace.
func (c *Cluster) Get(ctx context.Context, gvr schema.GroupVersionResource, name string) (*unstructured.Unstructured, error) {
	return c.Dyn.Resource(gvr).Namespace(c.Namespace).Get(ctx, name, metav1.GetOptions{})
}

// Host is the host name of a Knative Service's route (status.url).
func (c *Cluster) Host(ctx context.Context, ksvc string) (string, error) {
	obj, err := c.Get(ctx, KService, ksvc)
	if err != nil {
		return "", err
	}
	raw, _, _ := unstructured.NestedString(obj.Object, "status", "url")
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("ksvc %s has no status.url (%q)", ksvc, raw)
	}
	return u.Host, nil
}

// Do sends a request to a function through the ingress, with the route's
// Host header, and returns status, headers and body.
func (c *Cluster) Do(ctx context.Context, ksvc, method, path string, header http.Header, body []byte) (int, http.Header, []byte, error) {
	host, err := c.Host(ctx, ksvc)
	if err != nil {
		return 0, nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Ingress, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Host = host
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s%s: %w", method, host, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// Pods lists the running pods of a Knative Service.
func (c *Cluster) Pods(ctx context.Context, ksvc string) (int, error) {
	pods, err := c.Kube.CoreV1().Pods(c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "serving.knative.dev/service=" + ksvc})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			n++
		}
	}
	return n, nil
}

// Exec runs a command in the first running pod with label app=<app> and
// returns its standard output.
func (c *Cluster) Exec(ctx context.Context, app string, cmd ...string) (string, error) {
	pods, err := c.Kube.CoreV1().Pods(c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app, FieldSelector: "status.phase=Running"})
	if err != nil {
		return "", err
	}
	if len(pods.Items) == 0 {
		return "", fmt.Errorf("no running pod with app=%s", app)
	}
	pod := pods.Items[0]
	req := c.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(c.Namespace).Name(pod.Name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: pod.Spec.Containers[0].Name, Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(c.cfg, http.MethodPost, req.URL())
	if err != nil {
		return "", err
	}
	var out, errb bytes.Buffer
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errb}); err != nil {
		return "", fmt.Errorf("exec %v in %s: %w: %s", cmd, pod.Name, err, errb.String())
	}
	return strings.TrimSpace(out.String()), nil
}

// Eventually polls f every interval until it returns nil or timeout passes.
func Eventually(ctx context.Context, timeout, interval time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
