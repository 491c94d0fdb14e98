//go:build e2e

package e2e_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// startConnectProxy is the suite's one host mapping, shared by all three
// engines: an HTTP proxy that accepts only CONNECT to the suite's names on
// port 443, tunnelling api.example.test to the edge and every other
// *.example.test to the page server. Firefox and WebKit have no
// --host-resolver-rules; every engine speaks to an HTTP CONNECT proxy. It
// refuses everything else (a browser's background traffic included), so
// nothing a browser does leaves the machine.
func startConnectProxy(t *testing.T, edgeAddr, pagesAddr string) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	tunnels := map[net.Conn]bool{}
	srv := &http.Server{ReadHeaderTimeout: 30 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := proxyTarget(r, edgeAddr, pagesAddr)
		if target == "" {
			http.Error(w, "corsgate e2e proxy: only CONNECT to *.example.test:443", http.StatusForbidden)
			return
		}
		up, err := net.DialTimeout("tcp", target, 10*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		client, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		if _, err := client.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n")); err != nil {
			client.Close()
			up.Close()
			return
		}
		mu.Lock()
		tunnels[client], tunnels[up] = true, true
		mu.Unlock()
		wg.Go(func() {
			done := make(chan struct{})
			go func() {
				// Bytes the client sent right after its CONNECT (a TLS
				// ClientHello sent without waiting) are already in buf.
				copyThenCloseWrite(up, io.MultiReader(buf, client))
				close(done)
			}()
			copyThenCloseWrite(client, up)
			<-done
			client.Close()
			up.Close()
			mu.Lock()
			delete(tunnels, client)
			delete(tunnels, up)
			mu.Unlock()
		})
	})}
	go func() {
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("proxy: %v", err)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		for c := range tunnels {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return lis.Addr().String()
}

// proxyTarget is where a CONNECT goes, or "" when it is refused.
func proxyTarget(r *http.Request, edgeAddr, pagesAddr string) string {
	if r.Method != http.MethodConnect {
		return ""
	}
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil || port != "443" {
		return ""
	}
	switch {
	case host == "api.example.test":
		return edgeAddr
	case strings.HasSuffix(host, ".example.test"):
		return pagesAddr
	}
	return ""
}

// copyThenCloseWrite copies src to dst, then closes dst's writing side so
// that the other end sees the end of this direction.
func copyThenCloseWrite(dst net.Conn, src io.Reader) {
	_, _ = io.Copy(dst, src)
	if c, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = c.CloseWrite()
	} else {
		dst.Close()
	}
}
