import { inboxPrefixOf, OPERATOR_TOKEN, SUBJECT_ID, type InboxKind } from "../events/index.js";
import { CorralError, ErrorCode } from "../errors/index.js";

/**
 * Who a NATS connection is. Each kind gets its own permissions (permissions.ts); the id is the
 * token its subjects carry (`corral.in.fw.<id>`, `corral.in.host.<id>`, `corral.in.op.<id>`), or
 * a name for kinds without subjects of their own (master, projections, auditor, and the host
 * simulator, which reports for any host id).
 */
export const IDENTITY_KINDS = [
  "master",
  "projections",
  "framework",
  "host",
  "operator",
  "auditor",
  "simulator",
] as const;
export type IdentityKind = (typeof IDENTITY_KINDS)[number];

export interface Identity {
  kind: IdentityKind;
  id: string;
}

const ID_RE = new RegExp(SUBJECT_ID);

/** A credential, the server's configuration or a connection names an identity that cannot be. */
export class CredentialsError extends CorralError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.InvalidCredentials, message, options);
    this.name = "CredentialsError";
  }
}

export function isIdentityKind(v: string): v is IdentityKind {
  return (IDENTITY_KINDS as readonly string[]).includes(v);
}

/** Check an identity from user input: a known kind, an id that is one subject token. */
export function identity(kind: string, id: string): Identity {
  if (!isIdentityKind(kind))
    throw new CredentialsError(`unknown identity kind "${kind}" (one of: ${IDENTITY_KINDS.join(", ")})`);
  if (!ID_RE.test(id))
    throw new CredentialsError(
      `${kind} id ${JSON.stringify(id)} is not valid: 1 to 64 of A-Z a-z 0-9 _ - (it becomes a NATS subject token)`,
    );
  // As the master: ids starting with "_" name the system in subjects (OPERATOR_TOKEN, whose
  // events a framework of that name could otherwise read).
  if (kind === "framework" && id.startsWith("_"))
    throw new CredentialsError(
      `framework id ${id} is reserved: ids starting with "_" name the system (e.g. ${OPERATOR_TOKEN})`,
    );
  return { kind, id };
}

/** The short token of a kind in inbox subjects (the same as in input subjects where there is one). */
const INBOX_KIND: Record<IdentityKind, InboxKind> = {
  master: "master",
  projections: "projections",
  framework: "fw",
  host: "host",
  operator: "op",
  auditor: "auditor",
  simulator: "sim",
};

/**
 * The connection's inbox prefix (nats.js `inboxPrefix`): replies to this identity (request
 * replies, JetStream acknowledgements, consumer deliveries, the master's answers named in
 * `Corral-Reply`) arrive under it, and only this identity may subscribe there.
 */
export function inboxPrefix(who: Identity): string {
  return inboxPrefixOf(INBOX_KIND[who.kind], who.id);
}

export const describeIdentity = (who: Identity): string => `${who.kind} ${who.id}`;

/**
 * What a credential may do beyond its kind. `frameworks` (operators only): run frameworks under
 * any framework id, with a new id each time, as `corral run` does; `corral up` grants it to the
 * local user's operator credential.
 */
export const GRANTS = ["frameworks"] as const;
export type Grant = (typeof GRANTS)[number];

/** Check grants from user input or a file: known ones, on the kind they apply to. */
export function grantsFor(who: Identity, grants: readonly string[]): Grant[] {
  const out: Grant[] = [];
  for (const g of grants) {
    if (!(GRANTS as readonly string[]).includes(g))
      throw new CredentialsError(`unknown grant "${g}" (one of: ${GRANTS.join(", ")})`);
    if (who.kind !== "operator")
      throw new CredentialsError(`the ${g} grant is for operators, not for ${describeIdentity(who)}`);
    if (!out.includes(g as Grant)) out.push(g as Grant);
  }
  return out;
}
