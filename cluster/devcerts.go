package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DevCertFiles are the files GenerateDevCerts writes in its directory.
var DevCertFiles = []string{"ca.pem", "ca-key.pem", "node.pem", "node-key.pem", "client.pem", "client-key.pem"}

// GenerateDevCerts writes a fresh local CA and two certificates it signs,
// one for nodes and one for clients and workers, into dir (created 0700):
// ca.pem, node.pem, node-key.pem, client.pem, client-key.pem and the CA's
// key ca-key.pem. Both certificates carry the server and client key usages
// (every shoal process is both, see Security) and the DNS and IP names
// localhost, 127.0.0.1, ::1 and hosts. ECDSA P-256, valid for validFor.
// For demos and tests: a real deployment's CA key is not kept beside the
// nodes. Existing files are overwritten.
func GenerateDevCerts(dir string, hosts []string, validFor time.Duration) error {
	if validFor <= 0 {
		return fmt.Errorf("dev-certs: validity %v must be > 0", validFor)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dev-certs: %w", err)
	}
	now := time.Now().Add(-time.Minute)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	ca := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "shoal dev CA", Organization: []string{"shoal"}},
		NotBefore: now, NotAfter: now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("dev-certs: CA: %w", err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return err
	}
	if err := writePEM(dir, "ca.pem", "CERTIFICATE", caDER, 0o644); err != nil {
		return err
	}
	if err := writeKey(dir, "ca-key.pem", caKey); err != nil {
		return err
	}
	names := append([]string{"localhost", "127.0.0.1", "::1"}, hosts...)
	for _, who := range []string{"node", "client"} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		leaf := &x509.Certificate{
			SerialNumber: serial(), Subject: pkix.Name{CommonName: "shoal " + who, Organization: []string{"shoal"}},
			NotBefore: now, NotAfter: now.Add(validFor),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		for _, n := range names {
			if ip := net.ParseIP(n); ip != nil {
				leaf.IPAddresses = append(leaf.IPAddresses, ip)
			} else if n != "" {
				leaf.DNSNames = append(leaf.DNSNames, n)
			}
		}
		der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("dev-certs: %s: %w", who, err)
		}
		if err := writePEM(dir, who+".pem", "CERTIFICATE", der, 0o644); err != nil {
			return err
		}
		if err := writeKey(dir, who+"-key.pem", key); err != nil {
			return err
		}
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

func writeKey(dir, name string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(dir, name, "PRIVATE KEY", der, 0o600)
}

func writePEM(dir, name, typ string, der []byte, mode os.FileMode) error {
	p := filepath.Join(dir, name)
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(p, b, mode); err != nil {
		return fmt.Errorf("dev-certs: %w", err)
	}
	return os.Chmod(p, mode) // WriteFile keeps an existing file's mode
}
