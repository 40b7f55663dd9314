export {
  IDENTITY_KINDS,
  CredentialsError,
  GRANTS,
  describeIdentity,
  grantsFor,
  identity,
  inboxPrefix,
  isIdentityKind,
  type Grant,
  type Identity,
  type IdentityKind,
} from "./identity.js";
export { permissionsFor, type NatsPermissions } from "./permissions.js";
export {
  formatCredential,
  newCredential,
  parseCredential,
  readCredential,
  type Credential,
} from "./credentials.js";
export {
  natsConnectOptions,
  type ConnectAs,
  serverList,
  type NatsAccess,
  type NatsAuth,
  type ResolvedAccess,
  type TlsFiles,
} from "./connection.js";
export {
  AUTH_FILE,
  CONF_FILE,
  USERS_FILE,
  defaultCredsFile,
  ensureCredential,
  issueCredential,
  loadUsers,
  renderAuthConf,
  renderNatsConf,
  revokeCredential,
  writeNatsConf,
  writeUsers,
  type IssueOptions,
  type Issued,
  type NatsConfOptions,
  type ServerTls,
  type UserEntry,
} from "./server-config.js";
