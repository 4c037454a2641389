/**
 * `promise`, or 'timeout' once `ms` passed first. What the promise does after that is its own
 * business (it is not cancelled): for waits that must end — a health probe, a close at shutdown —
 * on dependencies that may never answer.
 */
export function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve('timeout'), Math.max(0, ms));
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
