/**
 * A user-facing error: bad argument, unreadable or malformed file, unknown id. The CLI prints its
 * message on one line and exits with `exitCode`; anything else is a bug and is reported as such.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'UserError';
  }
}
