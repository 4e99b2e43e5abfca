// The `sidecar-injector` command: one subcommand per file in this folder. Errors the user can fix end as one
// line on stderr and exit code 2; anything else is a bug and exits 1 with the message, never a stack trace.

import { InjectorError } from '../errors.js';

const USAGE = `usage: sidecar-injector <command> [flags]

commands:
  serve      run the admission webhook over HTTPS
             [--port 9443] [--cert-dir DIR] [--config FILE] [--revision NAME]
             [--cert-secret NAME --webhook-config NAME... [--cert-validity 8760h] [--ca-validity 87600h]]
             [--cert-poll-interval 10s] [--shutdown-delay 5s]
  inject     inject sidecars into manifests, like istioctl kube-inject
             -f FILE|- [--revision NAME] [--config FILE]
  check      explain whether pods would be injected, step by step
             -f FILE --namespace-labels k=v,... [--revision NAME] [--config FILE]
  certs      write a CA and a serving certificate
             --out DIR --dns NAME...
  bootstrap  print the Envoy bootstrap of a pod's istio-proxy (envoy template), checked against Envoy's schema
             -f FILE|- [--revision NAME] [--config FILE]
  iptables   install the traffic redirect, as istio-iptables (also runs as "istio-iptables")
             -p 15001 -z 15006 -u 1337 -m REDIRECT|TPROXY ... [--dry-run]
`;

type Command = (argv: string[]) => Promise<void>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve.js')).serve,
  inject: async () => (await import('./inject.js')).injectCommand,
  check: async () => (await import('./check.js')).checkCommand,
  certs: async () => (await import('./certs.js')).certsCommand,
  bootstrap: async () => (await import('./bootstrap.js')).bootstrapCommand,
  iptables: async () => (await import('./iptables.js')).iptablesCommand,
  // istio-init runs `istio-iptables <flags>`: with this name our image can serve as the init image unchanged.
  'istio-iptables': async () => (await import('./iptables.js')).iptablesCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(USAGE);
    return name === undefined ? 2 : 0;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    process.stderr.write(`sidecar-injector: unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')})\n`);
    return 2;
  }
  try {
    await (await load())(rest);
    return 0;
  } catch (error) {
    if (error instanceof InjectorError) {
      process.stderr.write(`sidecar-injector ${name}: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`sidecar-injector ${name}: internal error: ${(error as Error)?.message ?? String(error)}\n`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv.slice(2));
}
