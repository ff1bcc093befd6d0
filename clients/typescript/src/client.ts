// Hand-written helpers around the generated grpc-js clients: one place that sets up the three
// service clients with retries for idempotent calls, deadlines, TLS and a bearer token.
import {
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientUnaryCall,
  type Interceptor,
  type ServiceError,
  CallCredentials,
  InterceptingCall,
  Metadata,
  credentials,
} from "@grpc/grpc-js";
import { isIP } from "node:net";

import { IngestServiceClient } from "./gen/driftwise/v1/ingest_service.js";
import { ProfileServiceClient } from "./gen/driftwise/v1/profile_service.js";
import { RankingServiceClient } from "./gen/driftwise/v1/ranking_service.js";

/** Default deadline of a call made with `unary` (milliseconds). */
export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * The calls that are safe to send again: reads, upserts/deletes, and event batches (the server
 * applies an `event_id` once and answers a duplicate with the original acknowledgement).
 * Streams are never retried: re-sending a half-consumed stream is the caller's decision.
 */
export const IDEMPOTENT_METHODS: ReadonlyArray<{ service: string; method: string }> = [
  { service: "driftwise.v1.IngestService", method: "UpsertItems" },
  { service: "driftwise.v1.IngestService", method: "DeleteItems" },
  { service: "driftwise.v1.IngestService", method: "IngestEvents" },
  { service: "driftwise.v1.ProfileService", method: "GetProfile" },
  { service: "driftwise.v1.ProfileService", method: "DeleteUserData" },
  { service: "driftwise.v1.RankingService", method: "Recommend" },
  { service: "driftwise.v1.RankingService", method: "Rank" },
];

/** Retry policy of the idempotent calls (gRPC service config, gRFC A6). */
export interface RetryPolicy {
  /** Attempts in all, the first included (2-5). */
  maxAttempts: number;
  /** Backoff before the first retry, seconds (jittered by grpc-js). */
  initialBackoffSeconds: number;
  /** Upper bound of the backoff, seconds. */
  maxBackoffSeconds: number;
  /** Factor applied to the backoff after each retry. */
  backoffMultiplier: number;
  /** Status codes worth a retry; UNAVAILABLE means the call never reached a healthy server. */
  retryableStatusCodes: string[];
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 4,
  initialBackoffSeconds: 0.1,
  maxBackoffSeconds: 2,
  backoffMultiplier: 2,
  retryableStatusCodes: ["UNAVAILABLE"],
};

/** The `grpc.service_config` JSON that retries IDEMPOTENT_METHODS with `policy`. */
export function retryServiceConfig(policy: RetryPolicy = DEFAULT_RETRY_POLICY): string {
  return JSON.stringify({
    methodConfig: [
      {
        name: IDEMPOTENT_METHODS,
        retryPolicy: {
          maxAttempts: policy.maxAttempts,
          initialBackoff: `${policy.initialBackoffSeconds}s`,
          maxBackoff: `${policy.maxBackoffSeconds}s`,
          backoffMultiplier: policy.backoffMultiplier,
          retryableStatusCodes: policy.retryableStatusCodes,
        },
      },
    ],
  });
}

/** A bearer token, or a function that returns the current one (called for every call). */
export type TokenSource = string | (() => string | Promise<string>);

/** How to reach a Driftwise server. */
export interface ConnectOptions {
  /** Channel credentials; default plaintext (`credentials.createInsecure()`), for loopback only. */
  credentials?: ChannelCredentials;
  /**
   * A bearer token sent as `authorization: Bearer <token>` with every call. With TLS credentials it
   * travels as call credentials; over plaintext only to a loopback address (localhost, 127.0.0.0/8,
   * ::1) or with `allowInsecureToken`, otherwise `connect` throws.
   */
  token?: TokenSource;
  /** Send `token` over plaintext to a non-loopback address too (a trusted network, tests). */
  allowInsecureToken?: boolean;
  /** Retry policy of the idempotent calls; `false` turns retries off. Default DEFAULT_RETRY_POLICY. */
  retry?: RetryPolicy | false;
  /** Extra channel options (keepalive, message sizes...); they win over the ones set here. */
  channelOptions?: ChannelOptions;
}

/** The three service clients of one server. */
export interface DriftwiseClients {
  ingest: IngestServiceClient;
  profile: ProfileServiceClient;
  ranking: RankingServiceClient;
  /** Closes the three clients' channels. */
  close(): void;
}

/** Creates the IngestService, ProfileService and RankingService clients for `address` ("host:port"). */
export function connect(address: string, options: ConnectOptions = {}): DriftwiseClients {
  let creds = options.credentials ?? credentials.createInsecure();
  const interceptors: Interceptor[] = [];
  if (options.token !== undefined) {
    if (creds._isSecure()) {
      creds = creds.compose(bearerToken(options.token));
    } else if (options.allowInsecureToken || isLoopback(address)) {
      // grpc-js refuses call credentials on an insecure channel: add the header per call instead
      interceptors.push(tokenInterceptor(options.token));
    } else {
      throw new Error(
        `refusing to send a token in plaintext to ${address}: use TLS (tls(...)), ` +
          "or allowInsecureToken if the network is trusted",
      );
    }
  }
  const channelOptions = {
    ...(options.retry === false
      ? { "grpc.enable_retries": 0 }
      : { "grpc.service_config": retryServiceConfig(options.retry) }),
    ...options.channelOptions,
    ...(interceptors.length > 0 ? { interceptors } : {}),
  };
  const ingest = new IngestServiceClient(address, creds, channelOptions);
  const profile = new ProfileServiceClient(address, creds, channelOptions);
  const ranking = new RankingServiceClient(address, creds, channelOptions);
  return {
    ingest,
    profile,
    ranking,
    close() {
      ingest.close();
      profile.close();
      ranking.close();
    },
  };
}

/** True for localhost, 127.0.0.0/8, ::1 and unix sockets: a token may go in plaintext there. */
export function isLoopback(address: string): boolean {
  let target = address.replace(/^dns:(\/\/[^/]*\/)?/, "");
  if (target.startsWith("unix:")) {
    return true;
  }
  const bracketed = /^\[([^\]]+)\](:\d+)?$/.exec(target);
  if (bracketed) {
    target = bracketed[1]!;
  } else if (isIP(target) === 0) {
    target = target.replace(/:\d+$/, "");
  }
  const host = target.toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost")) {
    return true;
  }
  if (isIP(host) === 4) {
    return host.startsWith("127.");
  }
  return isIP(host) === 6 && (host === "::1" || host === "0:0:0:0:0:0:0:1");
}

/** A client certificate and its private key (PEM), for servers that require mutual TLS. */
export interface ClientCertificate {
  /** The private key (PEM). */
  privateKey: Buffer;
  /** The certificate, and any intermediates after it (PEM). */
  certChain: Buffer;
}

/**
 * TLS channel credentials; `rootCert` (PEM) defaults to the system's trusted roots. With
 * `clientCertificate` the client presents that certificate (mutual TLS, `[tls] client_ca_file` on
 * the server).
 */
export function tls(rootCert?: Buffer, clientCertificate?: ClientCertificate): ChannelCredentials {
  return credentials.createSsl(
    rootCert ?? null,
    clientCertificate?.privateKey ?? null,
    clientCertificate?.certChain ?? null,
  );
}

/** Mutual TLS: trust `rootCert` and present `certChain` with `privateKey` (all PEM). */
export function mutualTls(rootCert: Buffer | undefined, privateKey: Buffer, certChain: Buffer): ChannelCredentials {
  return tls(rootCert, { privateKey, certChain });
}

/**
 * An interceptor that adds `authorization: Bearer <token>` to every call (plaintext channels). While
 * an asynchronous token is pending, the messages and the half-close written meanwhile wait, in order.
 */
function tokenInterceptor(token: TokenSource): Interceptor {
  return (options, nextCall) => {
    let started = false;
    const waiting: Array<() => void> = [];
    const whenStarted = (action: () => void): void => {
      if (started) {
        action();
      } else {
        waiting.push(action);
      }
    };
    return new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        const proceed = (value: string | undefined): void => {
          if (value !== undefined) {
            metadata.set("authorization", `Bearer ${value}`);
          }
          next(metadata, listener);
          started = true;
          waiting.splice(0).forEach((action) => action());
        };
        const value = typeof token === "function" ? token() : token;
        if (typeof value === "string") {
          proceed(value);
        } else {
          value.then(proceed, () => proceed(undefined)); // no token: the server answers UNAUTHENTICATED
        }
      },
      sendMessage(message, next) {
        whenStarted(() => next(message));
      },
      halfClose(next) {
        whenStarted(next);
      },
    });
  };
}

/** Call credentials that send `authorization: Bearer <token>` with every call (TLS channels only). */
export function bearerToken(token: TokenSource): CallCredentials {
  return credentials.createFromMetadataGenerator((_params, callback) => {
    Promise.resolve(typeof token === "function" ? token() : token).then(
      (value) => {
        const metadata = new Metadata();
        metadata.add("authorization", `Bearer ${value}`);
        callback(null, metadata);
      },
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
    );
  });
}

/** TLS (mutual TLS with `clientCertificate`) with a bearer token on every call. */
export function tlsWithToken(
  token: TokenSource,
  rootCert?: Buffer,
  clientCertificate?: ClientCertificate,
): ChannelCredentials {
  return credentials.combineChannelCredentials(tls(rootCert, clientCertificate), bearerToken(token));
}

/** A deadline `timeoutMs` from now, for CallOptions.deadline. */
export function deadlineIn(timeoutMs: number = DEFAULT_TIMEOUT_MS): Date {
  return new Date(Date.now() + timeoutMs);
}

/** Per-call settings of `unary`. */
export interface UnaryOptions {
  /** Deadline from now, milliseconds; default DEFAULT_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Request metadata (headers). */
  metadata?: Metadata;
  /** Other call options (per-call credentials...). */
  callOptions?: Partial<CallOptions>;
}

/**
 * Calls a generated unary method and returns a promise, always with a deadline:
 *   const res = await unary(clients.ranking.recommend.bind(clients.ranking), request, { timeoutMs: 2000 });
 * A failed call rejects with the grpc-js ServiceError (code, details, metadata); see describeError.
 */
export function unary<Req, Res>(
  method: (
    request: Req,
    metadata: Metadata,
    options: Partial<CallOptions>,
    callback: (error: ServiceError | null, response: Res) => void,
  ) => ClientUnaryCall,
  request: Req,
  options: UnaryOptions = {},
): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    method(
      request,
      options.metadata ?? new Metadata(),
      { ...options.callOptions, deadline: deadlineIn(options.timeoutMs) },
      (error, response) => (error ? reject(error) : resolve(response)),
    );
  });
}
