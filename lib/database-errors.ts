import {
  MongoNetworkError, MongoNotConnectedError, MongoOperationTimeoutError, MongoServerSelectionError,
  MongoTopologyClosedError, MongoError
} from 'mongodb'

/** Pool errors the driver does not export as classes. */
const poolErrorNames = new Set(['MongoWaitQueueTimeoutError', 'MongoPoolClearedError', 'PoolClearedOnNetworkError', 'MongoPoolClosedError'])

/** Errors that mean "the database cannot answer now", as opposed to a bug in a query. */
export function isDatabaseUnavailable (error: unknown): boolean {
  if (!(error instanceof MongoError)) return false
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
