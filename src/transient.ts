// Errors worth another try, by their message: the server or the link will
// likely be back. Shared by the client's migrating path and the migrator, so
// both retry the same things.

/**
 * IOERR (MIGRATE could not reach the target), LOADING, TRYAGAIN, BUSY (a
 * script running), failover (MASTERDOWN, READONLY from a demoted master,
 * NOREPLICAS from one cut off from its replicas), with or without MIGRATE's
 * "Target instance replied with error:" prefix; timeouts, reconnects and
 * socket errors; a group reported unavailable.
 */
const TRANSIENT =
  /^(?:ERR Target instance replied with error: )?(?:IOERR|LOADING|TRYAGAIN|MASTERDOWN|READONLY|NOREPLICAS|BUSY\b)|replied with error: (?:READONLY|LOADING|MASTERDOWN|NOREPLICAS)|timed? ?out|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EHOSTUNREACH|Connection is closed|aborted due to connection close|max retries per request|Stream isn't writeable|unavailable/i;

/** True when `message` says the failure is likely to pass (see TRANSIENT). */
export function isTransientMessage(message: string): boolean {
  return TRANSIENT.test(message);
}
