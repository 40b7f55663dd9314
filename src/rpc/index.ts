export { CallChannel, rejection, type CallBody } from "./channel.js";
