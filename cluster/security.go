package cluster

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/shoalrt/shoal/messages"
)

// TokenHeader is the gRPC metadata key that carries the cluster token on
// every remote stream (node to node, client or worker to node, and the
// node's replies back).
const TokenHeader = "shoal-token"

// probeMethod is a gRPC method no protoactor service has: StartRemote
// answers it (after TLS and the token check) so that Probe can tell a
// working connection from a refused one at once.
const probeMethod = "/shoal.Probe/Check"

// Security is what protects protoactor remote traffic (docs/security.md).
// The zero value is none: plain gRPC, no token.
//
// TLS is mutual: with CertFile, KeyFile and CAFile set (all three or none),
// the remote's gRPC server requires a client certificate signed by the CA,
// and every outbound connection presents the certificate and accepts only a
// peer whose certificate the CA signed. Every shoal process is both a server
// and a client (protoactor answers requests by dialling the sender back), so
// one certificate with both the server and client key usages serves a
// process. Host names are not checked: protoactor dials clients back at the
// address they advertise, which no certificate can list in advance; the
// identity is "signed by this cluster's CA", so give each cluster its own CA.
//
// Token, when set, is sent on every stream this process opens and required
// on every stream it accepts; a peer without it is refused with
// codes.Unauthenticated (Probe turns it into messages.CodeUnauthorized).
// Without TLS the token crosses the network in clear text.
type Security struct {
	CertFile, KeyFile, CAFile string
	Token                     string
}

// TLS tells whether TLS is configured.
func (s Security) TLS() bool { return s.CertFile != "" || s.KeyFile != "" || s.CAFile != "" }

// Validate checks that the TLS files come together.
func (s Security) Validate() error {
	if s.TLS() && (s.CertFile == "" || s.KeyFile == "" || s.CAFile == "") {
		return fmt.Errorf("tls: --tls-cert, --tls-key and --tls-ca go together (mutual TLS); got cert %q, key %q, ca %q", s.CertFile, s.KeyFile, s.CAFile)
	}
	return nil
}

// TLSConfigs loads the certificates and returns the server's and the
// dialler's tls.Config (nil, nil without TLS).
func (s Security) TLSConfigs() (server, client *tls.Config, err error) {
	if err := s.Validate(); err != nil || !s.TLS() {
		return nil, nil, err
	}
	cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: load --tls-cert %s / --tls-key %s: %w", s.CertFile, s.KeyFile, err)
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: --tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("tls: --tls-ca %s holds no PEM certificate", s.CAFile)
	}
	server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	client = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// The chain is verified below against the CA; only the host name
		// check is skipped (see Security).
		InsecureSkipVerify: true,
		VerifyConnection:   verifyPeer(pool),
	}
	return server, client, nil
}

// verifyPeer accepts a server whose certificate chains to roots.
func verifyPeer(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the peer presented no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			return fmt.Errorf("tls: the peer's certificate is not signed by --tls-ca: %w", err)
		}
		return nil
	}
}

// dialOptions are the gRPC options of every outbound connection.
func (s Security) dialOptions() ([]grpc.DialOption, error) {
	_, client, err := s.TLSConfigs()
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if client != nil {
		creds = credentials.NewTLS(client)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if s.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCreds(s.Token)))
	}
	return opts, nil
}

// RemoteOptions are the remote options that apply s: pass them to
// StartRemote. The server side (credentials, token check) and the dial
// side (credentials, token) are both set.
func (s Security) RemoteOptions() ([]remote.ConfigOption, error) {
	server, _, err := s.TLSConfigs()
	if err != nil {
		return nil, err
	}
	dial, err := s.dialOptions()
	if err != nil {
		return nil, err
	}
	var srv []grpc.ServerOption
	if server != nil {
		srv = append(srv, grpc.Creds(credentials.NewTLS(server)))
	}
	if s.Token != "" {
		srv = append(srv, grpc.ChainStreamInterceptor(checkTokenStream(s.Token)), grpc.ChainUnaryInterceptor(checkTokenUnary(s.Token)))
	}
	return []remote.ConfigOption{
		remote.WithDialOptions(dial...),
		func(c *remote.Config) { c.ServerOptions = append(c.ServerOptions, srv...) },
	}, nil
}

// tokenCreds sends the token as metadata on every call, with or without TLS.
type tokenCreds string

func (t tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{TokenHeader: string(t)}, nil
}

func (t tokenCreds) RequireTransportSecurity() bool { return false }

var errBadToken = status.Error(codes.Unauthenticated, "shoal: missing or wrong token (--token)")

func tokenOK(ctx context.Context, want string) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	got := md.Get(TokenHeader)
	return len(got) == 1 && subtle.ConstantTimeCompare([]byte(got[0]), []byte(want)) == 1
}

func checkTokenStream(want string) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !tokenOK(ss.Context(), want) {
			return errBadToken
		}
		return handler(srv, ss)
	}
}

func checkTokenUnary(want string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !tokenOK(ctx, want) {
			return nil, errBadToken
		}
		return handler(ctx, req)
	}
}

// probeHandler answers probeMethod; other unknown methods stay unknown.
func probeHandler(_ any, stream grpc.ServerStream) error {
	if m, _ := grpc.MethodFromServerStream(stream); m == probeMethod {
		return nil
	}
	return status.Error(codes.Unimplemented, "unknown method")
}

// DefaultProbeTimeout bounds Probe when ctx has no deadline.
const DefaultProbeTimeout = 5 * time.Second

// Probe opens one gRPC stream to the remote at addr with s, so that a client
// learns at once, with a clear error, what protoactor would only show as
// requests timing out: the node is down, speaks TLS and the client does
// not (or the reverse), refuses the client's certificate, or wants another
// token. Errors are *messages.Error: CodeUnauthorized for a refused token,
// CodeUnavailable otherwise.
func Probe(ctx context.Context, addr string, s Security) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel func()
		ctx, cancel = context.WithTimeout(ctx, DefaultProbeTimeout)
		defer cancel()
	}
	opts, err := s.dialOptions()
	if err != nil {
		return err
	}
	conn, err := grpc.DialContext(ctx, addr, opts...)
	if err != nil {
		return messages.Errorf(messages.CodeUnavailable, "node %s: %v", addr, err)
	}
	defer conn.Close()
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, probeMethod)
	if err == nil {
		if err = st.CloseSend(); err == nil {
			err = st.RecvMsg(&emptypb.Empty{})
		}
	}
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	switch s := status.Convert(err); s.Code() {
	case codes.Unauthenticated:
		return messages.Errorf(messages.CodeUnauthorized, "node %s refused the token: %s", addr, s.Message())
	case codes.Unimplemented:
		return nil // a node without the probe: it accepted the connection
	default:
		return messages.Errorf(messages.CodeUnavailable, "node %s: cannot connect (%s)%s", addr, s.Message(), tlsHint(s.Message(), addr))
	}
}

// tlsHint adds what a TLS mismatch most likely means.
func tlsHint(msg, addr string) string {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "first record does not look like a tls handshake"):
		return "; the node does not speak TLS: drop --tls-* or start the node with them"
	case strings.Contains(m, "certificate required") || strings.Contains(m, "bad certificate") || strings.Contains(m, "unknown certificate authority"):
		return "; the node refused this client's certificate: pass --tls-cert/--tls-key signed by the node's CA"
	case strings.Contains(m, "not signed by --tls-ca"):
		return "; the node's certificate is not signed by --tls-ca"
	case strings.Contains(m, "connection closed") || strings.Contains(m, "eof") || strings.Contains(m, "reset") || strings.Contains(m, "broken pipe"):
		return "; if the node uses TLS, pass --tls-cert, --tls-key and --tls-ca, the certificate signed by the node's CA"
	}
	return ""
}
