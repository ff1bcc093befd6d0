// @driftwise/client: the generated driftwise.v1 messages and grpc-js clients (src/gen/, made by
// `buf generate --template clients/typescript/buf.gen.yaml`; never edit them by hand) plus a few
// hand-written helpers for deadlines, retries, TLS, tokens and error details.
export * from "./gen/driftwise/v1/common.js";
export * from "./gen/driftwise/v1/ingest_service.js";
export * from "./gen/driftwise/v1/profile_service.js";
export * from "./gen/driftwise/v1/ranking_service.js";
export * from "./client.js";
export * from "./errors.js";
