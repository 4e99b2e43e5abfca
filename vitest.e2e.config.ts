import { defineConfig } from 'vitest/config';

// The end-to-end suite (npm run test:e2e): one file, one control plane and two webhook servers. Its files end in
// .e2e.ts, which the unit suite's test/**/*.test.ts never picks up.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.ts'],
    // A scenario waits on the controller-manager and on webhook configurations reaching admission, a second or
    // two each; the limits only bound a hung API server.
    testTimeout: 60_000,
    // beforeAll starts etcd, kube-apiserver, the controller-manager and both servers: 10 s on two idle cores,
    // several times that while the unit suite or a Go build shares them.
    hookTimeout: 180_000,
  },
});
