// Standard output for the commands that print results. A reader that goes away early (`inject ... | head`) is
// normal for a Unix tool and ends the output quietly; without a listener Node would crash with a stack trace.

let guarded = false;

export function writeStdout(text: string): void {
  if (!guarded) {
    guarded = true;
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') return;
      process.stderr.write(`sidecar-injector: cannot write the output: ${error.code ?? error.message}\n`);
      process.exitCode = 2;
    });
  }
  process.stdout.write(text);
}
