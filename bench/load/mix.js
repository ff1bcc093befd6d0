// k6 virtual users for bench/load.py, which starts the server, loads the data and runs this file
// with the environment below; it is not meant to be run on its own.
//
// Each virtual user is one client with its own gRPC connection and its own user id, looping
// (closed loop, optional think time) until the scenario's duration has passed:
//   Recommend for its user; then, with probability INGEST_SHARE, IngestEvents (a small batch of
//   item events with fresh ids), or with probability FEEDBACK_SHARE, a StreamFeedback exchange
//   (LIKE or SKIP on one of the items just recommended, impression_id = the recommendation_id).
// Every call is recorded in the trend `rpc_ms` tagged {rpc, code}: its latency in ms and its gRPC
// status code (for a stream: the stream's status, or the code of a per-message Error).
//
// Environment: DRIFTWISE_TARGET (host:port), DRIFTWISE_PROTOS (import path), DRIFTWISE_USERS and
// DRIFTWISE_ITEMS (JSON arrays of ids), CLIENTS, SECONDS, GRACE_SECONDS, CALL_TIMEOUT_MS,
// INGEST_SHARE, FEEDBACK_SHARE, INGEST_BATCH, THINK_MS.

import grpc from 'k6/net/grpc';
import { SharedArray } from 'k6/data';
import { Trend } from 'k6/metrics';
import { sleep } from 'k6';

const env = __ENV;
const CLIENTS = parseInt(env.CLIENTS, 10);
const SECONDS = parseFloat(env.SECONDS);
const GRACE_SECONDS = parseFloat(env.GRACE_SECONDS);
const CALL_TIMEOUT_MS = parseInt(env.CALL_TIMEOUT_MS, 10);
const INGEST_SHARE = parseFloat(env.INGEST_SHARE);
const FEEDBACK_SHARE = parseFloat(env.FEEDBACK_SHARE);
const INGEST_BATCH = parseInt(env.INGEST_BATCH, 10);
const THINK_MS = parseFloat(env.THINK_MS || '0');

export const options = {
  scenarios: {
    mix: {
      executor: 'constant-vus',
      vus: CLIENTS,
      duration: `${SECONDS}s`,
      // iterations running at the deadline may finish (their calls have deadlines), then stop
      gracefulStop: `${GRACE_SECONDS}s`,
    },
  },
  summaryTrendStats: ['count', 'med', 'p(99)', 'max'],
};

const users = new SharedArray('users', () => JSON.parse(open(env.DRIFTWISE_USERS)));
const items = new SharedArray('items', () => JSON.parse(open(env.DRIFTWISE_ITEMS)));

const client = new grpc.Client();
client.load(
  [env.DRIFTWISE_PROTOS],
  'driftwise/v1/ranking_service.proto',
  'driftwise/v1/ingest_service.proto',
);

const rpcMs = new Trend('rpc_ms', true);
const clock =
  typeof performance !== 'undefined' && typeof performance.now === 'function'
    ? () => performance.now()
    : () => Date.now();

let connected = false;

function record(rpc, code, started) {
  rpcMs.add(clock() - started, { rpc, code: String(code) });
}

function field(message, camel, snake) {
  // k6 renders responses with protojson: lowerCamelCase names; accept the proto names too
  return message[camel] !== undefined ? message[camel] : message[snake];
}

function freshId(kind) {
  return `load-${kind}-${__VU}-${__ITER}-${Math.random().toString(36).slice(2, 10)}`;
}

function ingest(user) {
  const now = new Date().toISOString();
  const events = [];
  for (let i = 0; i < INGEST_BATCH; i++) {
    events.push({
      event_id: freshId(`ev${i}`),
      user_id: user,
      type: Math.random() < 0.7 ? 'EVENT_TYPE_VIEW' : 'EVENT_TYPE_CLICK',
      event_time: now,
      item_id: items[Math.floor(Math.random() * items.length)],
    });
  }
  const started = clock();
  const res = client.invoke(
    'driftwise.v1.IngestService/IngestEvents',
    { events },
    { timeout: CALL_TIMEOUT_MS },
  );
  record('IngestEvents', res.status, started);
}

function feedback(user, recommendation) {
  const shown = recommendation.items;
  const item = shown[Math.floor(Math.random() * shown.length)];
  const started = clock(); // opening the stream is part of the exchange
  const stream = new grpc.Stream(client, 'driftwise.v1.RankingService/StreamFeedback', {
    timeout: CALL_TIMEOUT_MS,
  });
  let done = false;
  const finish = (code) => {
    if (!done) {
      done = true;
      record('StreamFeedback', code, started);
    }
  };
  stream.on('data', (reply) => {
    const error = reply.error;
    finish(error ? error.code || 2 : 0); // 2 = UNKNOWN when an Error carries no code
    stream.end();
  });
  stream.on('error', (error) => finish(error && error.code !== undefined ? error.code : 2));
  stream.on('end', () => finish(2)); // closed without an answer: UNKNOWN
  stream.write({
    event: {
      event_id: freshId('fb'),
      user_id: user,
      type: Math.random() < 0.5 ? 'EVENT_TYPE_LIKE' : 'EVENT_TYPE_SKIP',
      event_time: new Date().toISOString(),
      item_id: field(item, 'itemId', 'item_id'),
      impression_id: field(recommendation, 'recommendationId', 'recommendation_id'),
    },
    count: 10,
  });
}

export default function () {
  if (!connected) {
    client.connect(env.DRIFTWISE_TARGET, { plaintext: true, timeout: '30s' });
    connected = true;
  }
  const user = users[(__VU - 1) % users.length];
  const started = clock();
  const res = client.invoke(
    'driftwise.v1.RankingService/Recommend',
    { user_id: user, count: 10 },
    { timeout: CALL_TIMEOUT_MS },
  );
  record('Recommend', res.status, started);
  if (res.status === grpc.StatusOK) {
    const draw = Math.random();
    if (draw < INGEST_SHARE) {
      ingest(user);
    } else if (draw < INGEST_SHARE + FEEDBACK_SHARE && res.message.items.length > 0) {
      feedback(user, res.message);
    }
  }
  if (THINK_MS > 0) {
    sleep(THINK_MS / 1000);
  }
}
