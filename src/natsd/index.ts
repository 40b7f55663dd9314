export {
  startNatsServer,
  startNatsCluster,
  type NatsServerHandle,
  type NatsServerOptions,
} from "./server.js";
