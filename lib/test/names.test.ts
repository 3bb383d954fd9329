// The names and defaults of lib/src/names.ts are the ones the files outside TypeScript use too: the conflist we ship
// and deploy/render-node-config's defaults (the shim gets them from the build, scripts/build/bundle.ts).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { REPO_ROOT } from "../../lab/src/paths.js";
import {
  DEFAULT_CNI_SOCKET,
  DEFAULT_SUBNET_FILE,
  isCniSocketPath,
  isInterfaceName,
  isMac,
  isPlainInterfaceName,
  isUnicastMac,
  vxlanDevice6Name,
  vxlanDeviceName,
  VXLAN6_DEVICE_NAME,
  VXLAN_DEVICE_NAME,
} from "#lib/names.js";

describe("shared names and defaults", () => {
  it("the shipped conflist and deploy/render-node-config default to the same subnet file and CNI socket", async () => {
    const conflist = JSON.parse(await readFile(join(REPO_ROOT, "deploy/cni/10-trellis.conflist"), "utf8")) as {
      plugins: Record<string, unknown>[];
    };
    const plugin = conflist.plugins[0] ?? assert.fail("the conflist has no plugin");
    assert.equal(plugin.subnetFile, DEFAULT_SUBNET_FILE);
    assert.equal(plugin.agentSocket, DEFAULT_CNI_SOCKET);
    const render = await readFile(join(REPO_ROOT, "deploy/render-node-config"), "utf8");
    assert.ok(
      render.includes(`subnet_file=\${subnet_file:-${DEFAULT_SUBNET_FILE}}`),
      "render-node-config's --subnet-file default",
    );
    assert.ok(
      render.includes(`cni_socket=\${cni_socket:-${DEFAULT_CNI_SOCKET}}`),
      "render-node-config's --cni-socket default",
    );
  });

  it("names a VNI's device as flannel does, and recognises only such names", () => {
    assert.equal(vxlanDeviceName(1), "flannel.1");
    assert.ok(VXLAN_DEVICE_NAME.test(vxlanDeviceName(4096)));
    assert.ok(!VXLAN_DEVICE_NAME.test("flannel.x") && !VXLAN_DEVICE_NAME.test("cni0"));
    assert.equal(vxlanDevice6Name(1), "flannel-v6.1");
    assert.ok(isInterfaceName(vxlanDevice6Name(9999)) && !isInterfaceName(vxlanDevice6Name(10_000)));
    assert.ok(VXLAN6_DEVICE_NAME.test(vxlanDevice6Name(4096)) && !VXLAN6_DEVICE_NAME.test(vxlanDeviceName(1)));
  });

  it("interface names: the kernel's rule, and the plain subset for devices we are told to create", () => {
    for (const ok of ["eth0", "a", "x".repeat(15), "flannel.1", "veth@1"]) assert.ok(isInterfaceName(ok), ok);
    for (const bad of ["", ".", "..", "x".repeat(16), "a/b", "a:b", "a b", "a\0"])
      assert.ok(!isInterfaceName(bad), JSON.stringify(bad));
    assert.ok(
      isPlainInterfaceName("flannel.1") && !isPlainInterfaceName("veth@1") && !isPlainInterfaceName("x".repeat(16)),
    );
  });

  it("MACs in lowercase colon form; unicast has the group bit clear", () => {
    assert.ok(isMac("02:42:ac:11:00:02") && !isMac("02:42:AC:11:00:02") && !isMac("02-42-ac-11-00-02"));
    assert.ok(isUnicastMac("02:42:ac:11:00:02") && !isUnicastMac("01:00:5e:00:00:01"));
  });

  it("a CNI socket path the shim can read without a JSON decoder, within sockaddr_un", () => {
    assert.ok(isCniSocketPath(DEFAULT_CNI_SOCKET));
    for (const bad of ["relative.sock", `/${"x".repeat(107)}`, '/run/"q".sock', "/run/a\\b.sock", "/run/../x.sock"])
      assert.ok(!isCniSocketPath(bad), bad);
  });
});
