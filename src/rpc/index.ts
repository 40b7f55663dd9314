export { CallChannel, inboxFor, rejection, type CallBody } from "./channel.js";
