package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/corsgate/corsgate/test/envtesting"
)

// BenchmarkAuditCluster10000 measures the cluster mode over 10,000 objects
// in a real API server: 10,000 Ingresses, a fifth of them with ingress-nginx
// CORS annotations (null with default credentials, an http origin), listed
// 500 a page by the built binary. It reports the audit's wall time and the
// binary's peak resident memory. Run:
//
//	KUBEBUILDER_ASSETS=$PWD/bin/k8s go test ./cmd/corsgate -run '^$' -bench AuditCluster10000 -benchtime 1x
func BenchmarkAuditCluster10000(b *testing.B) {
	cluster := envtesting.New(b, envtesting.Options{NoCRDs: true})
	admin := cluster.User(b, "admin", "system:masters")
	cfg := rest.CopyConfig(admin.Config)
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	const n = 10000
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", i), Namespace: "default"},
					Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: fmt.Sprintf("h%d.example.com", i)}}}}
				if i%5 == 0 {
					ing.Annotations = map[string]string{
						"nginx.ingress.kubernetes.io/enable-cors":       "true",
						"nginx.ingress.kubernetes.io/cors-allow-origin": "null, https://origin-site.com, http://a.example.com",
					}
				}
				if err := c.Create(context.Background(), ing); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	file := admin.Kubeconfig
	b.ResetTimer()
	for range b.N {
		cmd := exec.Command(binary, "audit", "--kubeconfig", file, "-A")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		out, err := cmd.Output()
		took := time.Since(start)
		if err != nil {
			b.Fatalf("%v\n%s%s", err, out, stderr.String())
		}
		// An audit longer than a second says how far it got on stderr.
		if took > 1500*time.Millisecond && !strings.Contains(stderr.String(), "object(s) read (listing Ingress)") {
			b.Errorf("no progress on stderr in %v:\n%s", took, stderr.String())
		}
		if !strings.Contains(string(out), "10000 object(s) audited, 2000 with findings") {
			b.Errorf("summary:\n%s", out[max(0, len(out)-300):])
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		b.ReportMetric(float64(took.Milliseconds()), "ms/audit")
		b.ReportMetric(float64(ru.Maxrss)/1024, "MB-maxrss")
		b.ReportMetric(float64(ru.Utime.Sec)+float64(ru.Utime.Usec)/1e6, "s-user")
	}
}
