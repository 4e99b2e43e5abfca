// The strict check of a bootstrap against Envoy's own schema: every kind of mistake Envoy would refuse at start-up
// is refused here, with the JSON path that holds it.

import { beforeAll, describe, expect, it } from 'vitest';
import { type BootstrapValidator, loadBootstrapValidator } from '../src/bootstrap-validation/load.js';
import type { JsonObject } from '../src/core/json.js';
import { InvalidBootstrapError } from '../src/errors.js';

let validator: BootstrapValidator;
beforeAll(() => {
  validator = loadBootstrapValidator();
});

const HTTP_PROTOCOL_OPTIONS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** A small bootstrap Envoy accepts: one static cluster, one listener, ADS. */
function bootstrap(): JsonObject {
  return {
    node: { id: 'sidecar~10.0.0.1~app.team~team.svc.cluster.local', cluster: 'app.team' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 15000 } } },
    dynamic_resources: {
      lds_config: { ads: {}, resource_api_version: 'V3' },
      ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] },
    },
    static_resources: {
      clusters: [
        {
          name: 'xds-grpc',
          type: 'STRICT_DNS',
          connect_timeout: '1s',
          load_assignment: {
            cluster_name: 'xds-grpc',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'istiod.istio-system.svc', port_value: 15012 } } } }] }],
          },
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': HTTP_PROTOCOL_OPTIONS,
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
        },
      ],
      listeners: [
        {
          name: '0.0.0.0_15021',
          address: { socket_address: { address: '0.0.0.0', port_value: 15021 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'agent',
                    route_config: { virtual_hosts: [{ name: 'backend', domains: ['*'], routes: [] }] },
                    http_filters: [
                      {
                        name: 'envoy.filters.http.router',
                        typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
                      },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
    },
  };
}

/** The bootstrap after `change`, checked; the problems as "path: message" lines. */
function problemsAfter(change: (b: any) => void): string[] {
  const document = bootstrap();
  change(document);
  return validator.validate(document).map((p) => `${p.path}: ${p.message}`);
}

describe('the strict bootstrap check', () => {
  it('accepts a well-formed bootstrap', () => {
    expect(validator.validate(bootstrap())).toEqual([]);
  });

  it('accepts the lowerCamelCase JSON names as well as the .proto names', () => {
    expect(problemsAfter((b) => {
      const cluster = b.static_resources.clusters[0];
      cluster.connectTimeout = cluster.connect_timeout;
      delete cluster.connect_timeout;
    })).toEqual([]);
  });

  it('rejects an unknown field, naming where it is', () => {
    expect(problemsAfter((b) => (b.static_resources.clusters[0].conect_timeout = '1s'))).toEqual([
      'static_resources.clusters[0].conect_timeout: unknown field "conect_timeout" (envoy.config.cluster.v3.Cluster has no such field)',
    ]);
  });

  it('rejects an unknown enum value, listing the known ones', () => {
    const [problem] = problemsAfter((b) => (b.dynamic_resources.ads_config.api_type = 'GRPCX'));
    expect(problem).toMatch(/^dynamic_resources\.ads_config\.api_type: unknown value "GRPCX" of enum envoy\.config\.core\.v3\.ApiConfigSource\.ApiType \(known: .*DELTA_GRPC/);
  });

  it('rejects a duration that is not proto3 JSON seconds', () => {
    expect(problemsAfter((b) => (b.static_resources.clusters[0].connect_timeout = '250ms'))).toEqual([
      'static_resources.clusters[0].connect_timeout: expected a duration such as "1s" or "0.250s", got "250ms"',
    ]);
  });

  it('rejects an @type that names no message of Envoy\'s API', () => {
    expect(problemsAfter((b) => {
      b.static_resources.listeners[0].filter_chains[0].filters[0].typed_config['@type'] = 'type.googleapis.com/envoy.filters.Nope';
    })).toEqual([
      'static_resources.listeners[0].filter_chains[0].filters[0].typed_config["@type"]: unresolvable type type.googleapis.com/envoy.filters.Nope: Envoy\'s API has no message envoy.filters.Nope',
    ]);
  });

  it('rejects an @type that names a message only by the end of its full name', () => {
    const [problem] = problemsAfter((b) => {
      b.static_resources.listeners[0].filter_chains[0].filters[0].typed_config['@type'] = 'type.googleapis.com/v3.HttpConnectionManager';
    });
    expect(problem).toMatch(/typed_config\["@type"\]: unresolvable type type\.googleapis\.com\/v3\.HttpConnectionManager/);
  });

  it('rejects a port above 65535 by the rule in address.proto', () => {
    expect(problemsAfter((b) => (b.static_resources.listeners[0].address.socket_address.port_value = 70000))).toEqual([
      'static_resources.listeners[0].address.socket_address.port_value: 70000 is out of range: must be <= 65535',
    ]);
  });

  it('rejects an empty cluster name, and a missing one alike', () => {
    expect(problemsAfter((b) => (b.static_resources.clusters[0].name = ''))).toEqual([
      'static_resources.clusters[0].name: must not be empty (at least 1 character)',
    ]);
    expect(problemsAfter((b) => delete b.static_resources.clusters[0].name)).toEqual([
      'static_resources.clusters[0].name: must not be empty (at least 1 character)',
    ]);
  });

  it('rejects a missing required oneof, such as a socket address without a port', () => {
    expect(problemsAfter((b) => delete b.admin.address.socket_address.port_value)).toEqual([
      'admin.address.socket_address: one of port_value, named_port is required',
    ]);
  });

  it('rejects a required message left out', () => {
    expect(problemsAfter((b) => (b.bootstrap_extensions = [{ name: 'envoy.bootstrap.internal_listener' }]))).toEqual([
      'bootstrap_extensions[0].typed_config: is required',
    ]);
  });

  it('applies the rules inside a config given by @type', () => {
    expect(problemsAfter((b) => delete b.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stat_prefix)).toEqual([
      'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stat_prefix: must not be empty (at least 1 character)',
    ]);
  });

  it('rejects two members of one oneof', () => {
    const problems = problemsAfter((b) => (b.static_resources.clusters[0].cluster_type = { name: 'envoy.clusters.dynamic_forward_proxy' }));
    expect(problems[0]).toMatch(/^static_resources\.clusters\[0\]: only one of type, cluster_type may be set, got type and cluster_type$/);
  });

  it('rejects a wrongly typed scalar', () => {
    expect(problemsAfter((b) => (b.static_resources.listeners[0].address.socket_address.port_value = '15021x'))).toEqual([
      'static_resources.listeners[0].address.socket_address.port_value: expected an integer (uint32), got "15021x"',
    ]);
  });

  it('checks the value of a TypedStruct against the message its type_url names', () => {
    expect(problemsAfter((b) => {
      b.bootstrap_extensions = [
        {
          name: 'envoy.bootstrap.internal_listener',
          typed_config: {
            '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct',
            type_url: 'type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener',
            value: { buffer_size_kb: 0 },
          },
        },
      ];
    })).toEqual(['bootstrap_extensions[0].typed_config.value.buffer_size_kb: 0 is out of range: must be >= 1 and <= 8192']);
  });

  it('reports every problem at once', () => {
    const problems = problemsAfter((b) => {
      b.static_resources.clusters[0].name = '';
      b.static_resources.listeners[0].address.socket_address.port_value = 70000;
      b.dynamic_resources.ads_config.api_type = 'GRPCX';
    });
    expect(problems).toHaveLength(3);
  });

  it('throws an InvalidBootstrapError whose one-line message names every path', () => {
    const document = bootstrap() as any;
    document.static_resources.clusters[0].name = '';
    document.admin.address.socket_address.port_value = 70000;
    let thrown: unknown;
    try {
      validator.assertValid(document);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidBootstrapError);
    const error = thrown as InvalidBootstrapError;
    expect(error.code).toBe('SI_ERR_INVALID_BOOTSTRAP');
    expect(error.message).not.toContain('\n');
    expect(error.message).toContain('admin.address.socket_address.port_value: 70000 is out of range');
    expect(error.message).toContain('static_resources.clusters[0].name: must not be empty');
  });
});
