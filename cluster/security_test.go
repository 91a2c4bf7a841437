package cluster

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/shoalrt/shoal/messages"
)

func devSecurity(t *testing.T, dir, who, token string) Security {
	t.Helper()
	return Security{CertFile: filepath.Join(dir, who+".pem"), KeyFile: filepath.Join(dir, who+"-key.pem"),
		CAFile: filepath.Join(dir, "ca.pem"), Token: token}
}

// probeServer serves the probe with the server side of sec on a loopback
// port: the same gRPC options StartRemote gets, without protoactor.
func probeServer(t *testing.T, sec Security) string {
	t.Helper()
	opts, err := sec.RemoteOptions()
	if err != nil {
		t.Fatal(err)
	}
	cfg := remote.Configure("127.0.0.1", 0, opts...)
	srv := grpc.NewServer(append(cfg.ServerOptions, grpc.UnknownServiceHandler(probeHandler))...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return l.Addr().String()
}

func wantCode(t *testing.T, err error, code messages.ErrorCode, hint string) {
	t.Helper()
	var e *messages.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
	if !strings.Contains(err.Error(), hint) {
		t.Fatalf("error %q does not say %q", err, hint)
	}
}

func TestProbeTLSAndToken(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	if err := GenerateDevCerts(dir, []string{"node1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := GenerateDevCerts(other, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	addr := probeServer(t, devSecurity(t, dir, "node", "s3cret"))
	ctx := context.Background()

	if err := Probe(ctx, addr, devSecurity(t, dir, "client", "s3cret")); err != nil {
		t.Fatalf("good certificate and token: %v", err)
	}
	wantCode(t, Probe(ctx, addr, devSecurity(t, dir, "client", "wrong")), messages.CodeUnauthorized, "token")
	wantCode(t, Probe(ctx, addr, devSecurity(t, dir, "client", "")), messages.CodeUnauthorized, "token")
	wantCode(t, Probe(ctx, addr, Security{Token: "s3cret"}), messages.CodeUnavailable, "--tls-cert")
	// A certificate of another CA, and the node's certificate judged by
	// another CA: both refused.
	bad := devSecurity(t, other, "client", "s3cret")
	bad.CAFile = filepath.Join(dir, "ca.pem")
	wantCode(t, Probe(ctx, addr, bad), messages.CodeUnavailable, "cert")
	wantCode(t, Probe(ctx, addr, devSecurity(t, other, "client", "s3cret")), messages.CodeUnavailable, "not signed by --tls-ca")

	// TLS without a client certificate (not possible through Security,
	// which wants all three files): refused by the server.
	_, client, err := devSecurity(t, dir, "client", "").TLSConfigs()
	if err != nil {
		t.Fatal(err)
	}
	noCert := client.Clone()
	noCert.Certificates = nil
	conn, err := grpc.Dial(addr, grpc.WithTransportCredentials(credentials.NewTLS(noCert)), grpc.WithPerRPCCredentials(tokenCreds("s3cret")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := conn.NewStream(cctx, &grpc.StreamDesc{ServerStreams: true}, probeMethod)
	if err == nil {
		_ = st.CloseSend()
		err = st.RecvMsg(&emptypb.Empty{})
	}
	// The server's alert ("certificate required") races with its closing
	// the connection: the client sees one or the other, never a stream.
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("TLS client without certificate: got %v, want the connection refused", err)
	}

	// A plain node with a token: the token alone works without TLS.
	plain := probeServer(t, Security{Token: "t"})
	if err := Probe(ctx, plain, Security{Token: "t"}); err != nil {
		t.Fatalf("token without TLS: %v", err)
	}
	wantCode(t, Probe(ctx, plain, devSecurity(t, dir, "client", "t")), messages.CodeUnavailable, "does not speak TLS")
	// A node without a token accepts every client (a token it is sent is ignored).
	if err := Probe(ctx, probeServer(t, Security{}), Security{Token: "x"}); err != nil {
		t.Fatalf("node without token: %v", err)
	}
}

func TestSecurityValidate(t *testing.T) {
	if err := (Security{CertFile: "a.pem"}).Validate(); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Fatalf("cert without key and CA: got %v", err)
	}
	if _, _, err := (Security{CertFile: "/nonexistent", KeyFile: "/nonexistent", CAFile: "/nonexistent"}).TLSConfigs(); err == nil {
		t.Fatal("missing files: no error")
	}
	if err := GenerateDevCerts(t.TempDir(), nil, 0); err == nil {
		t.Fatal("zero validity: no error")
	}
}
