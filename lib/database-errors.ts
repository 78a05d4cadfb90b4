import {
  MongoBulkWriteError, MongoError, MongoNetworkError, MongoNotConnectedError, MongoOperationTimeoutError,
  MongoServerSelectionError, MongoTopologyClosedError
} from 'mongodb'

/** Pool errors the driver does not export as classes. */
const poolErrorNames = new Set(['MongoWaitQueueTimeoutError', 'MongoPoolClearedError', 'PoolClearedOnNetworkError', 'MongoPoolClosedError'])

/** What a connection-level failure says once insertMany/bulkWrite has wrapped it (its class is lost). */
const wrappedConnectionFailure = /timed out|checking out a connection|connection .*closed|topology is closed|ECONNREFUSED|ECONNRESET|server selection/i

/** Socket errors the driver can pass on unwrapped (a write to a connection the server closed). */
const socketErrorCodes = new Set(['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT'])

/** Errors that mean "the database cannot answer now", as opposed to a bug in a query. */
export function isDatabaseUnavailable (error: unknown): boolean {
  if (!(error instanceof MongoError)) return socketErrorCodes.has((error as NodeJS.ErrnoException | null)?.code ?? '')
  if (error instanceof MongoBulkWriteError) {
    const writeErrors = Array.isArray(error.writeErrors) ? error.writeErrors.length : (error.writeErrors ? 1 : 0)
    return writeErrors === 0 && error.code === undefined && wrappedConnectionFailure.test(error.message)
  }
  return error instanceof MongoServerSelectionError ||
    error instanceof MongoNetworkError ||
    error instanceof MongoOperationTimeoutError ||
    error instanceof MongoNotConnectedError ||
    error instanceof MongoTopologyClosedError ||
    error.code === 50 /* MaxTimeMSExpired */ ||
    error.hasErrorLabel('RetryableWriteError') ||
    poolErrorNames.has(error.name)
}

export function isDuplicateKey (error: unknown): boolean {
  return error instanceof MongoError && error.code === 11000
}
