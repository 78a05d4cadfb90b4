/**
 * The promise's result, or a rejection (with `error` when given) once `ms` pass first (the work
 * itself is not cancelled). An infinite `ms` waits for the promise.
 */
export async function withTimeout<T> (promise: Promise<T>, ms: number, error?: unknown): Promise<T> {
  if (ms === Infinity) return await promise
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(error ?? new Error(`timed out after ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
