// libuv's thread pool runs the CNI service's link deletions (~20 ms each inside the kernel,
// lib/src/netlink/blocking-request.ts) beside file I/O. With its default of 4 threads, 50 pods' DELs would wait for
// each other; measured here with 16: 50 concurrent DELs in 269 ms against 349 ms for the reference plugins (0.77×).
// libuv reads the size once, when the pool first starts, so a host of the service (agent/src/launcher.cts) calls this
// before anything else. CommonJS, like the launcher that loads it first.
const SERVICE_THREAD_POOL_SIZE = 16;

/** Sets the pool's size unless the operator chose one. */
function sizeThreadPool(): void {
  process.env.UV_THREADPOOL_SIZE ??= String(SERVICE_THREAD_POOL_SIZE);
}

export = { SERVICE_THREAD_POOL_SIZE, sizeThreadPool };
