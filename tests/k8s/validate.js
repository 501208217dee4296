// Checks rendered Kubernetes objects offline: every field name must exist in
// the object's API type (misspellings are errors, not silently dropped), every
// value must have the field's type, and required fields must be present.
// usage: node validate.js FILE.yaml...   (multi-document YAML)
"use strict";
const fs = require("fs");
const k8s = require("@kubernetes/client-node");

// The Kubernetes "int-or-string" and map types as @kubernetes/client-node spells them.
const MAP_PREFIX = "{ [key: string]: ";

function typeName(v) {
  return Array.isArray(v) ? "array" : v === null ? "null" : typeof v;
}

// Walks value against the client library's attribute map of type; pushes errors.
function walk(value, type, path, errors) {
  if (value === null || value === undefined) return;
  if (type.startsWith("Array<")) {
    if (!Array.isArray(value)) return errors.push(`${path}: want a list, got ${typeName(value)}`);
    value.forEach((item, i) => walk(item, type.slice(6, -1), `${path}[${i}]`, errors));
    return;
  }
  if (type.startsWith(MAP_PREFIX)) {
    if (typeName(value) !== "object") return errors.push(`${path}: want a map, got ${typeName(value)}`);
    const inner = type.slice(MAP_PREFIX.length, -3);
    for (const [key, item] of Object.entries(value)) walk(item, inner, `${path}.${key}`, errors);
    return;
  }
  switch (type) {
    case "string":
    case "Date":
      if (typeof value !== "string") errors.push(`${path}: want a string, got ${typeName(value)}`);
      return;
    case "number":
      if (typeof value !== "number") errors.push(`${path}: want a number, got ${typeName(value)}`);
      return;
    case "boolean":
      if (typeof value !== "boolean") errors.push(`${path}: want true or false, got ${typeName(value)}`);
      return;
    case "IntOrString":
      if (typeof value !== "string" && !Number.isInteger(value))
        errors.push(`${path}: want an integer or a string, got ${typeName(value)}`);
      return;
    case "any":
    case "object":
      return;
  }
  const cls = k8s[type];
  if (!cls || typeof cls.getAttributeTypeMap !== "function") {
    // enum-like string types
    if (typeof value !== "string") errors.push(`${path}: want a string (${type}), got ${typeName(value)}`);
    return;
  }
  if (typeName(value) !== "object") return errors.push(`${path}: want an object (${type}), got ${typeName(value)}`);
  const fields = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [key, item] of Object.entries(value)) {
    if (!fields.has(key)) errors.push(`${path}.${key}: unknown field of ${type}`);
    else walk(item, fields.get(key), `${path}.${key}`, errors);
  }
}

function modelClass(apiVersion, kind) {
  try {
    return require(`kubernetes-models/${apiVersion}`)[kind];
  } catch (e) {
    return undefined;
  }
}

let failures = 0;
let checked = 0;
for (const file of process.argv.slice(2)) {
  const docs = k8s.loadAllYaml(fs.readFileSync(file, "utf8")).filter((d) => d);
  docs.forEach((doc, i) => {
    const where = `${file}: ${doc.kind || "?"}/${(doc.metadata && doc.metadata.name) || "?"}`;
    const errors = [];
    const version = (doc.apiVersion || "").split("/").pop();
    const type = version.charAt(0).toUpperCase() + version.slice(1) + doc.kind;
    if (!doc.apiVersion || !doc.kind) errors.push("missing apiVersion or kind");
    else if (!k8s[type]) errors.push(`no API type ${type} known for ${doc.apiVersion} ${doc.kind}`);
    else walk(doc, type, "", errors);
    const Model = modelClass(doc.apiVersion, doc.kind);
    if (!Model) errors.push(`no schema for ${doc.apiVersion} ${doc.kind}`);
    else {
      try {
        new Model(doc).validate();
      } catch (e) {
        errors.push(`schema: ${e.message}`);
      }
    }
    checked++;
    if (errors.length) {
      failures++;
      for (const e of errors) console.log(`not ok - ${where}: ${e}`);
    } else {
      console.log(`ok - ${where} (document ${i + 1})`);
    }
  });
}
console.log(`validate: ${checked - failures} passed, ${failures} failed`);
process.exit(failures || checked === 0 ? 1 : 0);
