//go:build e2e

package e2e_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// testPKI is a throwaway CA and one serving certificate for every
// *.example.test name the suite uses. Go clients trust the CA; each engine
// trusts it as precisely as it can, so that no other certificate error is
// ignored: Chromium accepts exactly this leaf key
// (--ignore-certificate-errors-spki-list), Firefox's fresh profile holds the
// CA, WebKit allows this leaf for each of the names.
type testPKI struct {
	pool *x509.CertPool
	cert tls.Certificate
	// spki is base64(SHA-256(SubjectPublicKeyInfo)) of the leaf, the form
	// Chromium's --ignore-certificate-errors-spki-list takes.
	spki string
	// caPEM and leafPEM are the CA and the leaf, PEM-encoded, for the trust
	// stores of Firefox (the CA) and WebKit (the leaf, per host).
	caPEM, leafPEM []byte
}

func newTestPKI(names ...string) (*testPKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "corsgate e2e test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{
		pool:    pool,
		cert:    tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key, Leaf: leaf},
		spki:    base64.StdEncoding.EncodeToString(sum[:]),
		caPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		leafPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
	}, nil
}

// serverConfig serves the leaf over TLS 1.2+ with HTTP/2 and HTTP/1.1, as a
// real edge would.
func (p *testPKI) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{p.cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

func (p *testPKI) String() string {
	return fmt.Sprintf("leaf %v, spki %s", p.cert.Leaf.DNSNames, p.spki)
}
