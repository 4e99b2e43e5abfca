// Preloaded (node --import) into the webhook servers the e2e suite starts: a server whose test process was killed
// before its afterAll ran exits too, instead of serving on until the machine stops. The orphan is re-parented,
// which changes its ppid.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(1);
}, 1_000).unref();
