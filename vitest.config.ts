import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Server tests open real TLS sockets; two cores, so keep the pool small and the timeouts honest.
    testTimeout: 20_000,
    hookTimeout: 60_000,
  },
});
