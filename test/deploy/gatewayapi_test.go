package deploy_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestGatewayAPIExampleAcceptedByAPIServer: the team's HTTPRoute and the
// CorsPolicy that targets it pass the real API server (server-side dry run,
// unknown fields refused) with the Gateway API CRDs installed.
func TestGatewayAPIExampleAcceptedByAPIServer(t *testing.T) {
	t.Parallel()
	apiServer(t)
	c, _ := newClient(t)
	objs := append(readObjects(t, "examples", "gateway-api", "httproute.yaml"), readObjects(t, "examples", "gateway-api", "corspolicy.yaml")...)
	kinds := map[string]bool{}
	for _, obj := range objs {
		kinds[obj.GetKind()] = true
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: obj.GetNamespace()}}
		if err := c.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	if !kinds["HTTPRoute"] || !kinds["CorsPolicy"] {
		t.Fatalf("examples/gateway-api holds %v, want an HTTPRoute and a CorsPolicy", keys(objs))
	}
	dryRunApply(t, objs)
}
