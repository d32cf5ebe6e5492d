/** For unit tests of validators: the HTTP status a call's DomainError maps to. */
import { DomainError } from "../../src/errors/domain";
import { HTTP_STATUS } from "../../src/errors/http";

/** null when `fn` returns, the status of its DomainError, or -1 for any other throw. */
export function statusOf(fn: () => unknown): number | null {
  try {
    fn();
    return null;
  } catch (error) {
    return error instanceof DomainError ? HTTP_STATUS[error.code] : -1;
  }
}
