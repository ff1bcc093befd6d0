// Command quickstart walks through the Driftwise API from Go: it upserts a few items, records a
// user's likes, asks for recommendations and sends feedback on a StreamFeedback stream.
//
// Every call has a deadline; idempotent unary calls are retried on UNAVAILABLE by the channel's
// service config. It prints machine-checkable lines (upserted N, ingested N events, recommended N
// items, feedback answered: N items, OK) and exits 1 with the gRPC status and its details on any
// error.
//
//	quickstart [-addr host:port] [-timeout 10s] [-user id]
//
// Environment: DRIFTWISE_ADDR (default localhost:50051), DRIFTWISE_TLS_CA (a PEM file: use TLS
// and trust that CA; unset means plaintext), DRIFTWISE_TLS_CERT and DRIFTWISE_TLS_KEY (PEM files:
// the client certificate and key, for a server that requires mutual TLS; need DRIFTWISE_TLS_CA),
// DRIFTWISE_TOKEN (a bearer token sent with every call; needs TLS).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	driftwisev1 "github.com/driftwise/driftwise/clients/go/driftwise/v1"
)

// serviceConfig retries the idempotent unary calls (reads, upserts, and event batches, which are
// idempotent by event_id) on UNAVAILABLE, with exponential backoff. Streams are not retried.
// grpc-go before 1.40 (Debian 12 ships 1.33) applies retryPolicy only with GRPC_GO_RETRY=on.
const serviceConfig = `{
  "methodConfig": [{
    "name": [
      {"service": "driftwise.v1.IngestService", "method": "UpsertItems"},
      {"service": "driftwise.v1.IngestService", "method": "IngestEvents"},
      {"service": "driftwise.v1.RankingService", "method": "Recommend"},
      {"service": "driftwise.v1.RankingService", "method": "Rank"},
      {"service": "driftwise.v1.ProfileService", "method": "GetProfile"}
    ],
    "retryPolicy": {
      "maxAttempts": 4,
      "initialBackoff": "0.2s",
      "maxBackoff": "2s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// bearerToken sends "authorization: Bearer <token>" with every call (per-RPC credentials).
type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity refuses to send the token over a plaintext connection.
func (bearerToken) RequireTransportSecurity() bool { return true }

func catalogue() []*driftwisev1.Item {
	item := func(id, title, description, category string, tags ...string) *driftwisev1.Item {
		return &driftwisev1.Item{ItemId: id, Title: title, Description: description, Category: category, Tags: tags}
	}
	return []*driftwisev1.Item{
		item("go-quickstart-1", "Star Voyage", "A crew travels to a distant galaxy to save humanity.", "movie", "science fiction", "adventure"),
		item("go-quickstart-2", "Robots of Tomorrow", "An engineer builds a robot that learns to dream.", "movie", "science fiction", "drama"),
		item("go-quickstart-3", "Galaxy Rescue", "Astronauts stranded on a space station fight to get home.", "movie", "science fiction", "thriller"),
		item("go-quickstart-4", "The Haunted Lighthouse", "A family spends a winter in a lighthouse full of ghosts.", "movie", "horror"),
		item("go-quickstart-5", "Kitchen Romance", "Two rival chefs fall in love during a cooking contest.", "movie", "romance", "comedy"),
	}
}

func main() {
	addr := flag.String("addr", envOr("DRIFTWISE_ADDR", "localhost:50051"), "server address host:port (env DRIFTWISE_ADDR)")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline of each call (and of the whole feedback stream)")
	user := flag.String("user", fmt.Sprintf("go-quickstart-user-%d", time.Now().UnixNano()), "user id (default: a new user per run)")
	flag.Parse()
	if err := run(*addr, *timeout, *user); err != nil {
		fmt.Fprintln(os.Stderr, "FAILED:", describe(err))
		os.Exit(1)
	}
	fmt.Println("OK")
}

// transportCredentials trusts the CA in caFile and, when certFile and keyFile are set, presents
// that client certificate (mutual TLS).
func transportCredentials(caFile, certFile, keyFile string) (credentials.TransportCredentials, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("TLS CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("TLS CA %s: no PEM certificate in it", caFile)
	}
	config := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if certFile != "" || keyFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate %q / key %q: %w", certFile, keyFile, err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(config), nil
}

func run(addr string, timeout time.Duration, user string) error {
	opts := []grpc.DialOption{grpc.WithDefaultServiceConfig(serviceConfig)}
	cert, key := os.Getenv("DRIFTWISE_TLS_CERT"), os.Getenv("DRIFTWISE_TLS_KEY")
	if ca := os.Getenv("DRIFTWISE_TLS_CA"); ca != "" {
		creds, err := transportCredentials(ca, cert, key)
		if err != nil {
			return err
		}
		opts = append(opts, grpc.WithTransportCredentials(creds))
	} else if cert != "" || key != "" {
		return errors.New("DRIFTWISE_TLS_CERT / DRIFTWISE_TLS_KEY need DRIFTWISE_TLS_CA (TLS)")
	} else {
		opts = append(opts, grpc.WithInsecure())
	}
	if token := os.Getenv("DRIFTWISE_TOKEN"); token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken(token)))
	}
	conn, err := grpc.Dial(addr, opts...)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	ingest := driftwisev1.NewIngestServiceClient(conn)
	ranking := driftwisev1.NewRankingServiceClient(conn)
	call := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), timeout)
	}

	// 1. The catalogue. Upserts are idempotent: a rerun replaces the same items.
	ctx, cancel := call()
	upserted, err := ingest.UpsertItems(ctx, &driftwisev1.UpsertItemsRequest{Items: catalogue()}, grpc.WaitForReady(true))
	cancel()
	if err != nil {
		return fmt.Errorf("UpsertItems: %w", err)
	}
	fmt.Printf("upserted %d\n", upserted.GetUpsertedCount())

	// 2. The user likes two science-fiction films. event_id is the idempotency key.
	at := timestamppb.New(time.Now().Add(-time.Minute))
	var events []*driftwisev1.Event
	for i, id := range []string{"go-quickstart-1", "go-quickstart-2"} {
		events = append(events, &driftwisev1.Event{
			EventId: fmt.Sprintf("%s-like-%d", user, i), UserId: user, Type: driftwisev1.EventType_EVENT_TYPE_LIKE,
			ItemId: id, EventTime: at, Context: &driftwisev1.Context{Device: "desktop", Surface: "home", Locale: "en-US"},
		})
	}
	ctx, cancel = call()
	ingested, err := ingest.IngestEvents(ctx, &driftwisev1.IngestEventsRequest{Events: events})
	cancel()
	if err != nil {
		return fmt.Errorf("IngestEvents: %w", err)
	}
	fmt.Printf("ingested %d events (profile version %d)\n", len(ingested.GetAcks()), ingested.GetAcks()[len(ingested.GetAcks())-1].GetProfileVersion())

	// 3. Recommendations, each with its explanation.
	ctx, cancel = call()
	recs, err := ranking.Recommend(ctx, &driftwisev1.RecommendRequest{UserId: user, Count: 3})
	cancel()
	if err != nil {
		return fmt.Errorf("Recommend: %w", err)
	}
	fmt.Printf("recommended %d items (%s, recommendation_id %s)\n", len(recs.GetItems()), recs.GetSource(), recs.GetRecommendationId())
	printItems(recs.GetItems())
	if len(recs.GetItems()) == 0 {
		return errors.New("Recommend returned no items")
	}

	// 4. Feedback on the stream: a LIKE on the top item, answered with refreshed recommendations.
	// The deadline covers the whole exchange.
	sctx, scancel := context.WithTimeout(context.Background(), timeout)
	defer scancel()
	stream, err := ranking.StreamFeedback(sctx)
	if err != nil {
		return fmt.Errorf("StreamFeedback: %w", err)
	}
	liked := recs.GetItems()[0].GetItemId()
	err = stream.Send(&driftwisev1.StreamFeedbackRequest{Count: 3, Event: &driftwisev1.Event{
		EventId: user + "-feedback-0", UserId: user, Type: driftwisev1.EventType_EVENT_TYPE_LIKE, ItemId: liked,
		EventTime: timestamppb.Now(), ImpressionId: recs.GetRecommendationId(),
	}})
	if err != nil {
		return fmt.Errorf("StreamFeedback send: %w", streamErr(stream, err))
	}
	answer, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("StreamFeedback receive: %w", err)
	}
	switch result := answer.GetResult().(type) {
	case *driftwisev1.StreamFeedbackResponse_Recommendations:
		fmt.Printf("feedback answered: %d items (liked %s, recorded=%t, profile version %d)\n",
			len(result.Recommendations.GetItems()), liked, answer.GetRecorded(), answer.GetProfileVersion())
		printItems(result.Recommendations.GetItems())
	case *driftwisev1.StreamFeedbackResponse_Error:
		// A per-message error: the stream itself goes on.
		e := result.Error
		for _, v := range e.GetFieldViolations() {
			fmt.Fprintf(os.Stderr, "  field %s: %s\n", v.GetField(), v.GetDescription())
		}
		return fmt.Errorf("feedback %s rejected (recorded=%t): code %d: %s", answer.GetEventId(), answer.GetRecorded(), e.GetCode(), e.GetMessage())
	default:
		return fmt.Errorf("feedback %s: answer without a result", answer.GetEventId())
	}
	if err := stream.CloseSend(); err != nil {
		return fmt.Errorf("StreamFeedback close: %w", err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		if err == nil {
			err = errors.New("unexpected message after CloseSend")
		}
		return fmt.Errorf("StreamFeedback end: %w", err)
	}
	return nil
}

func printItems(items []*driftwisev1.ScoredItem) {
	for i, it := range items {
		x := it.GetExplanation()
		fmt.Printf("  %d. %-16s score %.3f  %-24q %s: %s\n", i+1, it.GetItemId(), it.GetScore(), it.GetTitle(), x.GetReason(), x.GetSummary())
	}
}

// streamErr returns the stream's real status: Send reports io.EOF when the server ended the call.
func streamErr(stream driftwisev1.RankingService_StreamFeedbackClient, err error) error {
	if err == io.EOF {
		if _, rerr := stream.Recv(); rerr != nil {
			return rerr
		}
	}
	return err
}

// describe renders an error with its gRPC status code, message and google.rpc details.
func describe(err error) string {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return err.Error()
	}
	st := se.GRPCStatus()
	out := fmt.Sprintf("%v\n  status: %s: %s", err, st.Code(), st.Message())
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				out += fmt.Sprintf("\n  field %s: %s", v.GetField(), v.GetDescription())
			}
		case *errdetails.ErrorInfo:
			out += fmt.Sprintf("\n  reason %s (%s) %v", d.GetReason(), d.GetDomain(), d.GetMetadata())
		default:
			out += fmt.Sprintf("\n  detail %v", d)
		}
	}
	return out
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
