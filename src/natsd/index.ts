export {
  startNatsServer,
  startNatsCluster,
  natsServerAvailable,
  type NatsServerHandle,
  type NatsServerOptions,
} from "./server.js";
