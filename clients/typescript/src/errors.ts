// Reading Driftwise errors: a gRPC status code plus google.rpc details (ErrorInfo, BadRequest)
// in the `grpc-status-details-bin` trailer. The three messages are decoded by hand with the
// protobuf wire reader the generated code already depends on, so no googleapis protos are needed.
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { Metadata, status as Status, type ServiceError } from "@grpc/grpc-js";

// google.rpc.BadRequest.FieldViolation has the shape of driftwise.v1.FieldViolation.
import type { FieldViolation } from "./gen/driftwise/v1/common.js";

/** The google.rpc details Driftwise sends with an error status. */
export interface ErrorDetails {
  /** google.rpc.ErrorInfo.reason, for example "INVALIDARGUMENT" or "NOTFOUND"; "" if absent. */
  reason: string;
  /** google.rpc.ErrorInfo.domain; "" if absent. */
  domain: string;
  /** google.rpc.ErrorInfo.metadata. */
  metadata: Record<string, string>;
  /** google.rpc.BadRequest.field_violations: every invalid field of the request. */
  fieldViolations: FieldViolation[];
}

const STATUS_DETAILS_KEY = "grpc-status-details-bin";
const ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo";
const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";

/** True if `err` is the error grpc-js gives a failed call (it has a numeric status code). */
export function isServiceError(err: unknown): err is ServiceError {
  return typeof err === "object" && err !== null && typeof (err as ServiceError).code === "number";
}

/** Name of a status code, for example "INVALID_ARGUMENT" for 3. */
export function statusName(code: number): string {
  return Status[code] ?? `CODE_${code}`;
}

/** Decodes the google.rpc details of an error's trailing metadata; undefined if there are none. */
export function errorDetails(metadata: Metadata | undefined): ErrorDetails | undefined {
  const raw = metadata?.get(STATUS_DETAILS_KEY)[0];
  if (raw === undefined || typeof raw === "string") {
    return undefined;
  }
  const details: ErrorDetails = { reason: "", domain: "", metadata: {}, fieldViolations: [] };
  // google.rpc.Status { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
  forEachField(raw, (no, r) => {
    if (no !== 3) return false;
    // google.protobuf.Any { string type_url = 1; bytes value = 2; }
    let typeUrl = "";
    let value: Uint8Array = new Uint8Array();
    forEachField(r.bytes(), (n, a) => {
      if (n === 1) typeUrl = a.string();
      else if (n === 2) value = a.bytes();
      else return false;
      return true;
    });
    if (typeUrl === ERROR_INFO) {
      // ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
      forEachField(value, (n, e) => {
        if (n === 1) details.reason = e.string();
        else if (n === 2) details.domain = e.string();
        else if (n === 3) {
          const entry = pair(e.bytes());
          details.metadata[entry.field] = entry.description;
        } else return false;
        return true;
      });
    } else if (typeUrl === BAD_REQUEST) {
      // BadRequest { repeated FieldViolation field_violations = 1; } (field = 1, description = 2)
      forEachField(value, (n, b) => {
        if (n !== 1) return false;
        details.fieldViolations.push(pair(b.bytes()));
        return true;
      });
    }
    return true;
  });
  return details;
}

/**
 * One line for people: "INVALID_ARGUMENT (3): <message> [reason INVALIDARGUMENT, domain driftwise] events[0].user_id: <why>".
 * Anything that is not a gRPC error is printed as it is.
 */
export function describeError(err: unknown): string {
  if (!isServiceError(err)) {
    return err instanceof globalThis.Error ? (err.stack ?? err.message) : String(err);
  }
  const parts = [`${statusName(err.code)} (${err.code}): ${err.details}`];
  const details = errorDetails(err.metadata);
  if (details?.reason) parts.push(`[reason ${details.reason}${details.domain ? `, domain ${details.domain}` : ""}]`);
  for (const v of details?.fieldViolations ?? []) parts.push(`${v.field}: ${v.description}`);
  return parts.join(" ");
}

/** Calls `visit(fieldNumber, reader)` for each field; a visitor returning false skips the field. */
function forEachField(bytes: Uint8Array, visit: (fieldNo: number, reader: BinaryReader) => boolean): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    const start = reader.pos;
    if (!visit(fieldNo, reader)) {
      reader.pos = start;
      reader.skip(wireType);
    }
  }
}

/** Two string fields 1 and 2: a FieldViolation or a map<string, string> entry. */
function pair(bytes: Uint8Array): FieldViolation {
  const out: FieldViolation = { field: "", description: "" };
  forEachField(bytes, (n, r) => {
    if (n === 1) out.field = r.string();
    else if (n === 2) out.description = r.string();
    else return false;
    return true;
  });
  return out;
}
