// Validates custom resources against the CRD schemas published on npm by
// kubernetes-models (generated from each project's CRDs: Istio, Gateway API, Envoy
// Gateway, cert-manager, Prometheus Operator), and refuses fields the schema does not
// know, as `kubectl apply --validate=strict` does (the API server would silently prune
// them otherwise).
//
// Input (stdin): a JSON array of objects. Output (stdout): a JSON array, one entry per
// object: a list of problems (empty when valid), or null when no package has its kind.
// Used by scripts/validate_k8s.py.

import { readFileSync } from "node:fs";

const PACKAGES = ["istio", "gateway-api", "envoy-gateway", "cert-manager", "prometheus-operator"];

/** The kubernetes-models class of apiVersion/kind, or null. */
async function model(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  for (const name of PACKAGES) {
    try {
      const module = await import(`@kubernetes-models/${name}/${group}/${version}/${kind}`);
      if (module[kind]) return module[kind];
    } catch (error) {
      if (error.code !== "ERR_MODULE_NOT_FOUND" && error.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") throw error;
    }
  }
  return null;
}

/**
 * A copy of `value` that records, for each object in it, which keys the validator read.
 * A key never read, in an object of which the validator read others, is one the schema
 * does not name.
 */
function watched(value, path, objects) {
  if (Array.isArray(value)) return value.map((item, i) => watched(item, `${path}[${i}]`, objects));
  if (value === null || typeof value !== "object") return value;
  const copy = {};
  for (const [key, item] of Object.entries(value)) copy[key] = watched(item, `${path}.${key}`, objects);
  const seen = { path, keys: Object.keys(value), read: new Set(), listed: false };
  objects.push(seen);
  return new Proxy(copy, {
    get(target, key, receiver) {
      if (typeof key === "string") seen.read.add(key);
      return Reflect.get(target, key, receiver);
    },
    has(target, key) {
      if (typeof key === "string") seen.read.add(key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      seen.listed = true;
      return Reflect.ownKeys(target);
    },
  });
}

const documents = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const document of documents) {
  const Model = await model(document.apiVersion ?? "", document.kind ?? "");
  if (!Model) {
    results.push(null);
    continue;
  }
  const problems = [];
  const objects = [];
  try {
    Model.prototype.validate.call(watched(document, "", objects));
  } catch (error) {
    problems.push(error.message);
  }
  for (const seen of objects) {
    // Keys listed: a map, or unknown fields the schema preserves. Nothing read: an object
    // the schema leaves open (x-kubernetes-preserve-unknown-fields), or inside one.
    if (seen.listed || seen.read.size === 0) continue;
    for (const key of seen.keys) {
      if (!seen.read.has(key)) problems.push(`${seen.path}.${key}: unknown field`);
    }
  }
  results.push(problems);
}
process.stdout.write(JSON.stringify(results));
