package dev.driftwise.examples;

import com.google.protobuf.Timestamp;
import dev.driftwise.v1.Event;
import dev.driftwise.v1.EventType;
import dev.driftwise.v1.IngestEventsRequest;
import dev.driftwise.v1.IngestEventsResponse;
import dev.driftwise.v1.IngestServiceGrpc;
import dev.driftwise.v1.Item;
import dev.driftwise.v1.RankingServiceGrpc;
import dev.driftwise.v1.RecommendRequest;
import dev.driftwise.v1.RecommendResponse;
import dev.driftwise.v1.ScoredItem;
import dev.driftwise.v1.StreamFeedbackRequest;
import dev.driftwise.v1.StreamFeedbackResponse;
import dev.driftwise.v1.UpsertItemsRequest;
import dev.driftwise.v1.UpsertItemsResponse;
import io.grpc.CallCredentials;
import io.grpc.ChannelCredentials;
import io.grpc.CompositeChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.SecurityLevel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.StreamObserver;
import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Instant;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;

/**
 * Driftwise in Java: upsert a few items, record LIKEs, get explained recommendations, then give
 * feedback on one of them over the StreamFeedback stream and print the refreshed list.
 *
 * <p>Server address from {@code DRIFTWISE_ADDR} (default {@code localhost:50051}); the per-call
 * deadline in seconds from {@code DRIFTWISE_DEADLINE_S} (default 30). Security, as in the Go and
 * TypeScript quickstarts: {@code DRIFTWISE_TLS_CA} (a PEM file: use TLS and trust that CA; unset
 * means plaintext), {@code DRIFTWISE_TLS_CERT} and {@code DRIFTWISE_TLS_KEY} (PEM files: the client
 * certificate and its PKCS#8 key, for a server that requires mutual TLS; need the CA), {@code
 * DRIFTWISE_TOKEN} (a bearer token sent with every call; refused over plaintext unless the address is
 * loopback). TLS needs netty-tcnative: run with {@code -Djava.library.path=build/native} (see
 * scripts/clients/java.sh). Prints
 * machine-checkable lines ({@code upserted 5}, {@code ingested 2 events}, {@code recommended N items},
 * {@code feedback answered: K items}, {@code OK}); on a failed call prints the gRPC status and exits 1.
 */
public final class Quickstart {
  private static final String PREFIX = "java-qs-";

  private Quickstart() {}

  public static void main(String[] args) throws InterruptedException {
    String addr = System.getenv().getOrDefault("DRIFTWISE_ADDR", "localhost:50051");
    long deadlineSeconds = Long.parseLong(System.getenv().getOrDefault("DRIFTWISE_DEADLINE_S", "30"));
    ManagedChannel channel;
    try {
      channel = Grpc.newChannelBuilder(addr, credentials(addr)).build();
    } catch (IOException | IllegalArgumentException e) {
      System.err.println("FAILED: " + e.getMessage());
      System.exit(1);
      return;
    }
    int exitCode = 0;
    try {
      new Quickstart().run(channel, deadlineSeconds);
      System.out.println("OK");
    } catch (StatusRuntimeException e) {
      Status s = e.getStatus();
      System.err.println("FAILED: gRPC status " + s.getCode() + ": " + s.getDescription());
      exitCode = 1;
    } catch (Exception e) {
      System.err.println("FAILED: " + e);
      exitCode = 1;
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    System.exit(exitCode);
  }

  private static String env(String name) {
    String value = System.getenv(name);
    return value == null || value.isEmpty() ? null : value;
  }

  /** TLS (mutual TLS with a client certificate) and the bearer token, from the environment. */
  static ChannelCredentials credentials(String addr) throws IOException {
    String ca = env("DRIFTWISE_TLS_CA");
    String cert = env("DRIFTWISE_TLS_CERT");
    String key = env("DRIFTWISE_TLS_KEY");
    String token = env("DRIFTWISE_TOKEN");
    ChannelCredentials channelCredentials;
    if (ca != null) {
      TlsChannelCredentials.Builder tls = TlsChannelCredentials.newBuilder().trustManager(new File(ca));
      if ((cert == null) != (key == null)) {
        throw new IllegalArgumentException("DRIFTWISE_TLS_CERT and DRIFTWISE_TLS_KEY go together (mutual TLS)");
      }
      if (cert != null) {
        tls.keyManager(new File(cert), new File(key));
      }
      channelCredentials = tls.build();
    } else if (cert != null || key != null) {
      throw new IllegalArgumentException("DRIFTWISE_TLS_CERT / DRIFTWISE_TLS_KEY need DRIFTWISE_TLS_CA (TLS)");
    } else {
      channelCredentials = InsecureChannelCredentials.create();
    }
    if (token == null) {
      return channelCredentials;
    }
    if (ca == null && !isLoopback(addr)) {
      throw new IllegalArgumentException(
          "refusing to send DRIFTWISE_TOKEN in plaintext to " + addr + ": set DRIFTWISE_TLS_CA (TLS)");
    }
    return CompositeChannelCredentials.create(channelCredentials, new BearerToken(token, ca == null));
  }

  /** localhost, 127.0.0.0/8 or ::1 (host:port, [v6]:port or dns:///host:port; names are not resolved). */
  static boolean isLoopback(String addr) {
    String host = addr.replaceFirst("^dns:(//[^/]*/)?", "");
    if (host.startsWith("[")) {
      host = host.replaceFirst("^\\[(.*)\\](:\\d+)?$", "$1");
    } else if (host.indexOf(':') == host.lastIndexOf(':')) {
      host = host.replaceFirst(":\\d*$", ""); // host:port, not a bare IPv6 address
    }
    if (host.equalsIgnoreCase("localhost")) {
      return true;
    }
    if (!host.matches("[0-9.]+|[0-9a-fA-F:]+")) {
      return false; // another host name: not resolved here
    }
    try {
      return InetAddress.getByName(host).isLoopbackAddress();
    } catch (UnknownHostException e) {
      return false;
    }
  }

  /** Sends "authorization: Bearer TOKEN" with every call; only over TLS unless allowed in plaintext. */
  static final class BearerToken extends CallCredentials {
    private static final Metadata.Key<String> AUTHORIZATION =
        Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
    private final String token;
    private final boolean plaintextAllowed;

    BearerToken(String token, boolean plaintextAllowed) {
      this.token = token;
      this.plaintextAllowed = plaintextAllowed;
    }

    @Override
    public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
      if (info.getSecurityLevel() != SecurityLevel.PRIVACY_AND_INTEGRITY && !plaintextAllowed) {
        applier.fail(Status.UNAUTHENTICATED.withDescription("refusing to send the token without TLS"));
        return;
      }
      Metadata headers = new Metadata();
      headers.put(AUTHORIZATION, "Bearer " + token);
      applier.apply(headers);
    }

    @Override
    public void thisUsesUnstableApi() {}
  }

  private static Item item(String id, String title, String description, String... tags) {
    return Item.newBuilder()
        .setItemId(PREFIX + id)
        .setTitle(title)
        .setDescription(description)
        .addAllTags(List.of(tags))
        .setCategory("movie")
        .build();
  }

  private static Timestamp now() {
    Instant t = Instant.now();
    return Timestamp.newBuilder().setSeconds(t.getEpochSecond()).setNanos(t.getNano()).build();
  }

  private static Event like(String userId, String itemId) {
    return Event.newBuilder()
        .setEventId(userId + "-like-" + itemId) // the idempotency key: a retry is applied once
        .setUserId(userId)
        .setType(EventType.EVENT_TYPE_LIKE)
        .setItemId(itemId)
        .setEventTime(now())
        .build();
  }

  private static void print(RecommendResponse recs) {
    int rank = 1;
    for (ScoredItem it : recs.getItemsList()) {
      System.out.printf(
          "  %d. %-14s %-26s score=%.3f  %s: %s%n",
          rank++,
          it.getTitle(),
          it.getItemId(),
          it.getScore(),
          it.getExplanation().getReason(),
          it.getExplanation().getSummary());
    }
  }

  void run(ManagedChannel channel, long deadlineSeconds) throws Exception {
    IngestServiceGrpc.IngestServiceBlockingStub ingest = IngestServiceGrpc.newBlockingStub(channel);
    RankingServiceGrpc.RankingServiceBlockingStub ranking = RankingServiceGrpc.newBlockingStub(channel);
    RankingServiceGrpc.RankingServiceStub rankingAsync = RankingServiceGrpc.newStub(channel);
    String userId = "java-quickstart-" + UUID.randomUUID().toString().substring(0, 8);

    // 1. The catalogue. Upserts are idempotent (same ids replace the same items).
    List<Item> items =
        List.of(
            item("alien", "Alien", "The crew of a space freighter is hunted by a deadly creature.", "science fiction", "horror"),
            item("interstellar", "Interstellar", "Explorers travel through a wormhole to save humanity.", "science fiction", "adventure"),
            item("arrival", "Arrival", "A linguist learns to talk with visitors from another world.", "science fiction", "drama"),
            item("toy-story", "Toy Story", "Toys come to life when their owner leaves the room.", "animation", "children", "comedy"),
            item("notting-hill", "Notting Hill", "A London bookseller falls for a famous actress.", "romance", "comedy"));
    // A deadline on every call: withDeadlineAfter starts the clock now, so make a stub per call.
    UpsertItemsResponse upserted =
        ingest
            .withDeadlineAfter(deadlineSeconds, TimeUnit.SECONDS)
            .upsertItems(UpsertItemsRequest.newBuilder().addAllItems(items).build());
    System.out.println("upserted " + upserted.getUpsertedCount());

    // 2. What the user did: two LIKEs, one batch (validated whole, acknowledged after fsync).
    IngestEventsResponse ingested =
        ingest
            .withDeadlineAfter(deadlineSeconds, TimeUnit.SECONDS)
            .ingestEvents(
                IngestEventsRequest.newBuilder()
                    .addEvents(like(userId, PREFIX + "alien"))
                    .addEvents(like(userId, PREFIX + "interstellar"))
                    .build());
    long version = ingested.getAcks(ingested.getAcksCount() - 1).getProfileVersion();
    System.out.println("ingested " + ingested.getAcksCount() + " events for " + userId + " (profile version " + version + ")");

    // 3. Explained recommendations (items the user already liked are left out by default).
    RecommendResponse recs =
        ranking
            .withDeadlineAfter(deadlineSeconds, TimeUnit.SECONDS)
            .recommend(RecommendRequest.newBuilder().setUserId(userId).setCount(5).build());
    System.out.println("recommended " + recs.getItemsCount() + " items (" + recs.getSource() + ", list " + recs.getRecommendationId() + ")");
    print(recs);
    if (recs.getItemsCount() == 0) {
      throw new IllegalStateException("no recommendations to give feedback on");
    }

    // 4. Feedback on a shown item over the bidirectional stream: one request, one answer, in order.
    //    impression_id = the recommendation_id of the list the item was shown in (required).
    String liked = recs.getItems(0).getItemId();
    CompletableFuture<StreamFeedbackResponse> firstAnswer = new CompletableFuture<>();
    CompletableFuture<Void> done = new CompletableFuture<>();
    StreamObserver<StreamFeedbackRequest> requests =
        rankingAsync
            .withDeadlineAfter(deadlineSeconds, TimeUnit.SECONDS)
            .streamFeedback(
                new StreamObserver<StreamFeedbackResponse>() {
                  @Override
                  public void onNext(StreamFeedbackResponse r) {
                    firstAnswer.complete(r); // one request here, so one answer
                  }

                  @Override
                  public void onError(Throwable t) {
                    firstAnswer.completeExceptionally(t); // no-op if it was answered
                    done.completeExceptionally(t);
                  }

                  @Override
                  public void onCompleted() {
                    firstAnswer.completeExceptionally(new IllegalStateException("stream ended without an answer"));
                    done.complete(null);
                  }
                });
    Event feedback = like(userId, liked).toBuilder().setImpressionId(recs.getRecommendationId()).build();
    requests.onNext(StreamFeedbackRequest.newBuilder().setEvent(feedback).setCount(5).build());
    StreamFeedbackResponse answer = await(firstAnswer, deadlineSeconds); // read before writing more
    requests.onCompleted(); // half-close; the server then ends the stream with OK
    await(done, deadlineSeconds);
    if (answer.hasError()) { // a per-message error: the stream itself stays up
      dev.driftwise.v1.Error e = answer.getError(); // not java.lang.Error
      StringBuilder why = new StringBuilder(e.getMessage());
      e.getFieldViolationsList().forEach(v -> why.append("; ").append(v.getField()).append(": ").append(v.getDescription()));
      throw new StatusRuntimeException(Status.fromCodeValue(e.getCode()).withDescription(why.toString()));
    }
    RecommendResponse refreshed = answer.getRecommendations();
    System.out.println(
        "feedback answered: " + refreshed.getItemsCount() + " items (liked " + liked
            + ", recorded=" + answer.getRecorded() + ", profile version " + answer.getProfileVersion() + ")");
    print(refreshed);
  }

  /** Waits for a stream event; rethrows the stream's gRPC status if it failed. */
  private static <T> T await(CompletableFuture<T> future, long seconds) throws Exception {
    try {
      return future.get(seconds, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof Exception) {
        throw (Exception) e.getCause(); // a StatusRuntimeException from the stream, as is
      }
      throw e;
    }
  }
}
