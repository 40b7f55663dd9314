import { describe, expect, it } from "vitest";
import {
  AuthError,
  CallRejectedError,
  ConflictError,
  CorralError,
  ERROR_FAMILIES,
  ErrorCode,
  FAMILY_CLASSES,
  FencedError,
  InvalidResourceError,
  LeadershipError,
  LogError,
  NotFoundError,
  PastLogEndError,
  PlatformError,
  RateLimitError,
  TimeoutError,
  TransportError,
  ValidationError,
  errorFromWire,
  errorOf,
  familyOf,
  type ErrorFamily,
} from "../src/errors/index.js";
import { InvalidTaskError } from "../src/events/index.js";

const families = Object.keys(ERROR_FAMILIES) as ErrorFamily[];

describe("error families", () => {
  it("lists the families and their codes (codes never change: users and the CLI match on them)", () => {
    expect(ERROR_FAMILIES).toEqual({
      validation: [
        "INVALID_RESOURCE",
        "INVALID_EVENT",
        "INVALID_CALL",
        "PAYLOAD_TOO_LARGE",
        "DECODE_FAILED",
        "INVALID_ROLE",
        "INVALID_QUOTA",
      ],
      not_found: [
        "UNKNOWN_FRAMEWORK",
        "UNKNOWN_OFFER",
        "UNKNOWN_TASK",
        "AMBIGUOUS_TASK",
        "UNKNOWN_HOST",
        "UNKNOWN_VOLUME",
        "UNKNOWN_INVERSE_OFFER",
      ],
      conflict: [
        "INSUFFICIENT_RESOURCES",
        "DUPLICATE_TASK",
        "RESOURCE_IN_USE",
        "HOST_GONE",
        "HOST_DOWN",
        "INVALID_HOST_STATE",
        "CONFLICT",
        "FRAMEWORK_DISCONNECTED",
      ],
      leadership: ["NOT_LEADER", "FENCED"],
      auth: ["UNAUTHORIZED", "INVALID_CREDENTIALS"],
      log: ["DETERMINISM_VIOLATION", "SNAPSHOT_INVALID", "PAST_LOG_END", "INVALID_LOG_KEY", "LOG_TAMPERED"],
      transport: ["TIMEOUT", "CLOSED"],
      rate_limit: ["RATE_LIMITED"],
      platform: [
        "NATS_SERVER_MISSING",
        "NATS_SERVER_FAILED",
        "ALREADY_RUNNING",
        "WORKER_EXITED",
        "ISOLATOR_UNAVAILABLE",
        "DEVICE_LIMIT_REFUSED",
      ],
    });
  });

  it("puts every code in exactly one family", () => {
    const listed = families.flatMap((f) => [...ERROR_FAMILIES[f]]);
    expect(new Set(listed).size).toBe(listed.length);
    expect([...listed].sort()).toEqual([...Object.values(ErrorCode)].sort());
    for (const code of Object.values(ErrorCode)) expect(familyOf(code)).toBeDefined();
    expect(familyOf("NO_SUCH_CODE")).toBeUndefined();
  });

  it("matches a family by instanceof, whatever class carried the code", () => {
    for (const family of families)
      for (const code of ERROR_FAMILIES[family]) {
        const made = errorOf(code, "m");
        const plain = new CorralError(code, "m");
        const fromWire = errorFromWire({ name: "CallRejectedError", code, message: "m" });
        for (const e of [made, plain, fromWire]) {
          expect(e).toBeInstanceOf(CorralError);
          expect(e.code).toBe(code);
          for (const other of families)
            expect(e instanceof FAMILY_CLASSES[other], `${code} instanceof ${other}`).toBe(other === family);
        }
        expect(made).toBeInstanceOf(FAMILY_CLASSES[family]);
        expect(fromWire).toBeInstanceOf(CallRejectedError);
      }
  });

  it("keeps the name CorralError on a family (rejections carry it on the wire), and each condition class its own", () => {
    expect(new ValidationError(ErrorCode.InvalidCall, "m").name).toBe("CorralError");
    expect(new NotFoundError(ErrorCode.UnknownTask, "m").name).toBe("CorralError");
    expect(new TransportError(ErrorCode.Closed, "m").name).toBe("CorralError");
    const r = new InvalidResourceError("m");
    expect(r.name).toBe("InvalidResourceError");
    expect(r).toBeInstanceOf(ValidationError);
    expect(r).toBeInstanceOf(InvalidResourceError);
    // A sibling condition class of the same family is not matched by another's class.
    expect(new ValidationError(ErrorCode.Decode, "m")).not.toBeInstanceOf(InvalidResourceError);
    expect(new InvalidTaskError({ kind: "INVALID_COMMAND", message: "m" })).toBeInstanceOf(ValidationError);
    expect(new TimeoutError("t")).toBeInstanceOf(TransportError);
    expect(new TimeoutError("t").retryable).toBe(true);
    expect(new FencedError("f")).toBeInstanceOf(LeadershipError);
    expect(new PastLogEndError(3, "p")).toBeInstanceOf(LogError);
    expect(new CallRejectedError(ErrorCode.RateLimited, "slow")).toBeInstanceOf(RateLimitError);
    expect(new CorralError(ErrorCode.Unauthorized, "no")).toBeInstanceOf(AuthError);
    expect(new CorralError(ErrorCode.HostGone, "gone")).toBeInstanceOf(ConflictError);
    expect(new CorralError(ErrorCode.WorkerExited, "x")).toBeInstanceOf(PlatformError);
  });
});
