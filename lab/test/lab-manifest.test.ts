// The lab's `apply` and its pods' resolv.conf (pure): what kubectl would take from the chapter's manifest, what a
// runtime writes from a CNI result.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseLabManifest } from "../src/lab-apply.js";
import { REPO_ROOT } from "../src/paths.js";
import { resolvConfOf } from "../src/pods.js";

describe("the lab's manifests and pod resolv.conf", () => {
  it("takes the chapter's nginx.yaml: a Deployment of 2 app=nginx pods on port 80, and its Service as written", async () => {
    const manifest = parseLabManifest(await readFile(join(REPO_ROOT, "lab/examples/nginx.yaml"), "utf8"), "nginx.yaml");
    assert.deepEqual(manifest.deployments, [
      { namespace: "default", name: "nginx-deployment", replicas: 2, labels: { app: "nginx" }, port: 80 },
    ]);
    assert.equal(manifest.services.length, 1);
    assert.deepEqual((manifest.services[0] as { spec: unknown }).spec, {
      selector: { app: "nginx" },
      ports: [{ protocol: "TCP", port: 8000, targetPort: 80 }],
    });
  });

  it("refuses another kind, a selector the template does not match and a bad replica count, naming them", () => {
    assert.throws(
      () => parseLabManifest("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "m.yaml"),
      /m\.yaml: ConfigMap\/x: the lab applies apps\/v1 Deployments and v1 Services only/,
    );
    const deployment = (spec: string): string =>
      `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: ${spec}\n`;
    assert.throws(
      () =>
        parseLabManifest(
          deployment("{selector: {matchLabels: {app: a}}, template: {metadata: {labels: {app: b}}}}"),
          "m.yaml",
        ),
      /spec\.selector\.matchLabels app=a does not match the template's labels/,
    );
    assert.throws(
      () => parseLabManifest(deployment("{replicas: -1, template: {metadata: {labels: {app: a}}}}"), "m.yaml"),
      /spec\.replicas -1 must be an integer from 0 to 20/,
    );
    assert.throws(() => parseLabManifest("a: [", "m.yaml"), /m\.yaml: document 1/);
  });

  it("writes a pod's resolv.conf from the result's dns, and none without nameservers", () => {
    assert.equal(
      resolvConfOf({
        dns: {
          nameservers: ["169.254.20.10"],
          search: ["default.svc.cluster.local", "svc.cluster.local"],
          options: ["ndots:5"],
        },
      }),
      "nameserver 169.254.20.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n",
    );
    assert.equal(resolvConfOf({ dns: {} }), undefined);
    assert.equal(resolvConfOf({}), undefined);
  });
});
