// Driftwise quickstart in TypeScript: upsert a few items, record LIKEs for a user, ask for
// recommendations, then like one of them on StreamFeedback and print the refreshed list.
//
//   DRIFTWISE_ADDR=localhost:50051 node dist/examples/quickstart.js
//
// Environment (as the Go and Java quickstarts): DRIFTWISE_ADDR (default localhost:50051),
// DRIFTWISE_TLS_CA (a PEM file: use TLS and trust that CA; unset means plaintext),
// DRIFTWISE_TLS_CERT and DRIFTWISE_TLS_KEY (PEM files: the client certificate and key, for a server
// that requires mutual TLS; need DRIFTWISE_TLS_CA), DRIFTWISE_TOKEN (a bearer token sent with every
// call; refused over plaintext unless the address is loopback), DRIFTWISE_TIMEOUT_MS.
//
// Every call has a deadline. Prints machine-checkable lines (`upserted 5`, `recommended N items`,
// `feedback answered: K items`, `OK`); on an error prints the gRPC status and its details and
// exits with status 1.
import { readFileSync } from "node:fs";

import {
  type ConnectOptions,
  type RecommendResponse,
  type StreamFeedbackResponse,
  EventType,
  Item,
  Event,
  IngestEventsRequest,
  RecommendRequest,
  StreamFeedbackRequest,
  UpsertItemsRequest,
  connect,
  deadlineIn,
  describeError,
  explanationReasonToJSON,
  interestLayerToJSON,
  tls,
  unary,
} from "../src/index.js";

const address = process.env.DRIFTWISE_ADDR || "localhost:50051";
const TIMEOUT_MS = Number(process.env.DRIFTWISE_TIMEOUT_MS || 10_000);

const MOVIES: Array<[id: string, title: string, description: string, tags: string[]]> = [
  ["ts-qs-arrival", "Arrival (2016)", "A linguist learns to talk with visitors from space.", ["Sci-Fi", "Drama"]],
  ["ts-qs-interstellar", "Interstellar (2014)", "Explorers cross a wormhole to save humanity.", ["Sci-Fi", "Adventure"]],
  ["ts-qs-matrix", "The Matrix (1999)", "A hacker finds out reality is a simulation.", ["Sci-Fi", "Action"]],
  ["ts-qs-toy-story", "Toy Story (1995)", "Toys come to life when nobody is watching.", ["Animation", "Children", "Comedy"]],
  ["ts-qs-paddington", "Paddington (2014)", "A polite bear from Peru looks for a home in London.", ["Children", "Comedy"]],
];

/** TLS, client certificate and token from the environment (see the header). */
function connectOptions(): ConnectOptions {
  const env = (name: string): string | undefined => process.env[name] || undefined;
  const ca = env("DRIFTWISE_TLS_CA");
  const cert = env("DRIFTWISE_TLS_CERT");
  const key = env("DRIFTWISE_TLS_KEY");
  const token = env("DRIFTWISE_TOKEN");
  const options: ConnectOptions = {};
  if (ca !== undefined) {
    if ((cert === undefined) !== (key === undefined)) {
      throw new Error("DRIFTWISE_TLS_CERT and DRIFTWISE_TLS_KEY go together (mutual TLS)");
    }
    const client =
      cert !== undefined && key !== undefined
        ? { certChain: readFileSync(cert), privateKey: readFileSync(key) }
        : undefined;
    options.credentials = tls(readFileSync(ca), client);
  } else if (cert !== undefined || key !== undefined) {
    throw new Error("DRIFTWISE_TLS_CERT / DRIFTWISE_TLS_KEY need DRIFTWISE_TLS_CA (TLS)");
  }
  if (token !== undefined) {
    options.token = token; // connect() refuses it over plaintext to a non-loopback address
  }
  return options;
}

function printList(list: RecommendResponse): void {
  for (const [rank, item] of list.items.entries()) {
    const why = item.explanation;
    const reason = why
      ? `${explanationReasonToJSON(why.reason)} / ${interestLayerToJSON(why.layer)}: ${why.summary}`
      : "(no explanation)";
    console.log(`  ${rank + 1}. ${item.itemId}  score ${item.score.toFixed(3)}  ${item.title}  -- ${reason}`);
  }
}

async function main(): Promise<void> {
  const run = `${Date.now().toString(36)}-${process.pid}`; // fresh user and event ids per run
  const userId = `ts-quickstart-${run}`;
  const clients = connect(address, connectOptions());
  try {
    // 1. The catalogue: UpsertItems replaces items with the same id, so re-runs are harmless.
    const upserted = await unary(
      clients.ingest.upsertItems.bind(clients.ingest),
      UpsertItemsRequest.fromPartial({
        items: MOVIES.map(([itemId, title, description, tags]) =>
          Item.fromPartial({ itemId, title, description, tags, category: "movie", attributes: { source: "quickstart" } }),
        ),
      }),
      { timeoutMs: TIMEOUT_MS },
    );
    console.log(`upserted ${upserted.upsertedCount}`);

    // 2. What the user did: two LIKEs a few minutes ago. event_id is the idempotency key.
    const liked = ["ts-qs-arrival", "ts-qs-interstellar"];
    const acks = await unary(
      clients.ingest.ingestEvents.bind(clients.ingest),
      IngestEventsRequest.fromPartial({
        events: liked.map((itemId, i) =>
          Event.fromPartial({
            eventId: `${userId}-like-${i}`,
            userId,
            type: EventType.EVENT_TYPE_LIKE,
            eventTime: new Date(Date.now() - (5 - i) * 60_000),
            itemId,
            context: { device: "desktop", surface: "home", locale: "en-US" },
          }),
        ),
      }),
      { timeoutMs: TIMEOUT_MS },
    );
    const version = acks.acks.at(-1)?.profileVersion ?? 0;
    console.log(`ingested ${acks.acks.length} events (profile version ${version})`);

    // 3. Recommendations, each with its explanation; items the user liked are left out.
    const recommended = await unary(
      clients.ranking.recommend.bind(clients.ranking),
      RecommendRequest.fromPartial({ userId, count: 5, filter: { categories: ["movie"] } }),
      { timeoutMs: TIMEOUT_MS },
    );
    console.log(`recommended ${recommended.items.length} items (recommendation ${recommended.recommendationId})`);
    printList(recommended);
    const first = recommended.items[0];
    if (first === undefined) {
      throw new Error("Recommend returned no items");
    }

    // 4. StreamFeedback: like the top item of that list (impression_id = its recommendation_id);
    //    the answer is the list refreshed from the updated profile. One deadline for the stream.
    const stream = clients.ranking.streamFeedback({ deadline: deadlineIn(TIMEOUT_MS) });
    stream.write(
      StreamFeedbackRequest.fromPartial({
        event: {
          eventId: `${userId}-feedback-0`,
          userId,
          type: EventType.EVENT_TYPE_LIKE,
          eventTime: new Date(),
          itemId: first.itemId,
          impressionId: recommended.recommendationId,
        },
        count: 5,
      }),
    );
    stream.end(); // one exchange: half-close, then read the answers until the server ends the stream
    let answered = 0;
    for await (const answer of stream as AsyncIterable<StreamFeedbackResponse>) {
      answered += 1;
      if (answer.error !== undefined) {
        const fields = answer.error.fieldViolations.map((v) => `${v.field}: ${v.description}`).join("; ");
        throw new Error(`feedback ${answer.eventId} rejected: code ${answer.error.code} ${answer.error.message} ${fields}`);
      }
      const refreshed = answer.recommendations;
      if (!answer.recorded || refreshed === undefined) {
        throw new Error(`feedback ${answer.eventId} not recorded`);
      }
      console.log(
        `feedback answered: ${refreshed.items.length} items (liked ${first.itemId}, profile version ${answer.profileVersion})`,
      );
      printList(refreshed);
    }
    if (answered !== 1) {
      throw new Error(`StreamFeedback answered ${answered} messages, expected 1`);
    }
    console.log("OK");
  } finally {
    clients.close();
  }
}

main().catch((err: unknown) => {
  console.error(`error: ${describeError(err)}`);
  process.exit(1);
});
