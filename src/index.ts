/** Worker entry: the Hono app and the Durable Object classes wrangler binds. */
import { createApp } from "./http/app";

export { SessionAgent } from "./sessions/session-agent";
export { StreamDurableObject } from "./stream-object";

export default createApp();
