// Run by the chart's pre-delete hook in the injector's own image (node --input-type=module --eval, from /app so
// the image's node_modules resolve): deletes the MutatingWebhookConfigurations named as arguments, so no webhook
// outlives the server that answers it. One already gone counts as deleted.
import { AdmissionregistrationV1Api, KubeConfig } from '@kubernetes/client-node';

const kubeConfig = new KubeConfig();
// In the pod this is the in-cluster service account; KUBECONFIG when run by hand.
kubeConfig.loadFromDefault();
const api = kubeConfig.makeApiClient(AdmissionregistrationV1Api);

for (const name of process.argv.slice(1)) {
  try {
    await api.deleteMutatingWebhookConfiguration({ name });
    console.log(`deleted MutatingWebhookConfiguration ${name}`);
  } catch (error) {
    if (error?.code !== 404) {
      console.error(`cannot delete MutatingWebhookConfiguration ${name}: HTTP ${error?.code ?? ''} ${error?.body ?? error?.message}`);
      process.exit(1);
    }
    console.log(`MutatingWebhookConfiguration ${name} was already gone`);
  }
}
