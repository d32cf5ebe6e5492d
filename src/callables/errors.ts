/**
 * Failures of a callable, typed by where they happened so that the caller can decide what to
 * do: `validation` (the descriptor is malformed), `resolution` (it names something that is not
 * allowed or not there), `transport` (the call did not get an answer) and `remote` (the target
 * answered with an error). Each carries whether trying again could help.
 */
export type CallableErrorKind = "validation" | "resolution" | "transport" | "remote";

export class CallableError extends Error {
  override readonly name = "CallableError";
  constructor(
    readonly kind: CallableErrorKind,
    message: string,
    readonly retryable: boolean,
  ) {
    super(`${kind}: ${message}`);
  }
}
