/**
 * Session ids are ULIDs the API mints (time-ordered, 26 Crockford base-32 characters); the
 * routes that take one accept only that shape. One module for both, so the rule is written once.
 */
import { ulid } from "ulidx";
import { z } from "zod";

export const newSessionId = (): string => ulid();

export const sessionIdSchema = z
  .string()
  .regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, "session ids are ULIDs");
