"""Reads every deployment file under deploy/ for tests/it/deploy.rs.

Usage: check_deploy.py <repo root>

Parses every YAML file (all documents) and every JSON file under deploy/, checks what
can be checked without Docker or Kubernetes (references between services, volumes,
mounts, Secrets, ConfigMaps, kustomize components and patch targets, data sources, rule
files; one table-maintenance mechanism per deployment; where the lake is: on MinIO in
docker-compose.yml, made by minio-init before any shoplake service opens it, and on
object storage from a ConfigMap and a Secret in Kubernetes; overrides that turn MinIO
off leave no service depending on it or pointing at it), and prints one JSON object:

  errors     every problem found, each naming its file (the test fails on any)
  parsed     {"yaml": [...], "json": [...]}: the files that parsed
  env        every environment variable set in a compose or Kubernetes file (including
             those a kustomize patch adds to a container, and each key of a ConfigMap or
             Secret a container takes whole with envFrom):
             {file, where, key, value (compose interpolation applied; a ConfigMap's value
             when it is generated or defined here; null when it comes from a Secret or
             field), source: "literal" | "secret" | "field" | "configmap"}
  names      every SHOPLAKE_* name written anywhere in those files: {file, name}
  processes  every shoplake command line: {file, where, args (after the binary), env
             (name -> value, null for Secrets), config (repo path of the shoplake.toml
             it reads, or null), config_text (inline TOML, or null), whole (true when the
             service is complete in its file, not a fragment of an override)}
  configs    every shoplake.toml the deployment mounts: {file, where, path | text}
  compose_vars  the host variables the compose files interpolate (never a container's)

The Rust test loads the configs and env keys with shoplake's own config loader and runs
the command lines with the built binary; this script only reads files.
"""

import json
import os
import re
import shlex
import sys

import yaml

try:
    import tomllib  # Python 3.11+
except ImportError:  # pragma: no cover - older Pythons skip the TOML-based check
    tomllib = None

ROOT = os.path.abspath(sys.argv[1])
DEPLOY = os.path.join(ROOT, "deploy")
errors = []


def rel(path):
    return os.path.relpath(path, ROOT)


def err(file, message):
    errors.append(f"{file}: {message}")


class Loader(yaml.SafeLoader):
    """Safe YAML plus docker compose's merge-control tags (!reset, !override)."""


class Replaced(dict):
    """A mapping tagged !reset or !override: it replaces the base file's, not merged."""


class ReplacedList(list):
    """A sequence tagged !reset or !override."""


def _compose_tag(loader, _suffix, node):
    if isinstance(node, yaml.MappingNode):
        return Replaced(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return ReplacedList(loader.construct_sequence(node, deep=True))
    return loader.construct_scalar(node)


Loader.add_multi_constructor("!reset", _compose_tag)
Loader.add_multi_constructor("!override", _compose_tag)


# ---------------------------------------------------------------------------------------
# Parse everything.

yaml_docs = {}  # repo path -> [documents]
json_docs = {}
texts = {}
for dirpath, dirnames, filenames in os.walk(DEPLOY):
    dirnames.sort()
    for name in sorted(filenames):
        path = os.path.join(dirpath, name)
        r = rel(path)
        if name.endswith((".yml", ".yaml")):
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                texts[r] = text
                yaml_docs[r] = [d for d in yaml.load_all(text, Loader=Loader) if d is not None]
            except Exception as e:  # noqa: BLE001 - report any parse failure by file
                err(r, f"not valid YAML: {e}")
        elif name.endswith(".json"):
            try:
                with open(path, encoding="utf-8") as f:
                    json_docs[r] = json.load(f)
            except Exception as e:  # noqa: BLE001
                err(r, f"not valid JSON: {e}")

SHOPLAKE_NAME = re.compile(r"\bSHOPLAKE_[A-Z0-9_]*[A-Z0-9]")
names = []


def collect_names(r):
    for m in sorted(set(SHOPLAKE_NAME.findall(texts.get(r, "")))):
        names.append({"file": r, "name": m})


# ---------------------------------------------------------------------------------------
# docker compose.

# Host variables the compose files interpolate without a default (`${VAR}`,
# `${VAR:?message}`): the value a user would set, so the test sees a realistic value.
HOST_SAMPLES = {
    "TIKTOK_API_BASE_URL": "https://open-api.tiktokglobalshop.com",
    "TIKTOK_AUTH_BASE_URL": "https://auth.tiktok-shops.com",
    "TIKTOK_APP_KEY": "sample_app_key",
}
INTERP = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value):
    """docker compose interpolation with no host variables set: defaults apply."""
    if not isinstance(value, str):
        return value

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3)
        if op in (":-", "-"):
            return interpolate(arg)
        if op in (":+", "+"):
            return ""
        return HOST_SAMPLES.get(name, f"sample-{name.lower()}")

    return INTERP.sub(sub, value)


def deep_interpolate(v):
    if isinstance(v, dict):
        return {k: deep_interpolate(x) for k, x in v.items()}
    if isinstance(v, list):
        return [deep_interpolate(x) for x in v]
    return interpolate(v)


def compose_env(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            k, _, v = str(item).partition("=")
            out[k] = v if "=" in str(item) else None
        return out
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def is_shoplake_image(image):
    return bool(image) and re.search(r"(^|/)shoplake(:|@|$)", str(image)) is not None


def compose_command(cmd):
    if cmd is None:
        return None
    if isinstance(cmd, str):
        return shlex.split(cmd)
    return [str(c) for c in cmd]


processes = []
configs = []
env_entries = []

compose_files = sorted(
    r for r in yaml_docs if re.fullmatch(r"deploy/docker-compose[^/]*\.ya?ml", r)
)
base_compose = "deploy/docker-compose.yml"
if base_compose not in yaml_docs:
    err(base_compose, "missing")
base = deep_interpolate(yaml_docs.get(base_compose, [{}])[0])
base_services = base.get("services") or {}
base_shoplake = {n for n, s in base_services.items() if is_shoplake_image(s.get("image"))}
if not base_shoplake:
    err(base_compose, "no service runs the shoplake image")

compose_vars = set()  # host variables the compose files interpolate (${VAR…} or $VAR)
for r in compose_files:
    collect_names(r)
    for m in INTERP.finditer(texts.get(r, "")):
        if m.group(0) != "$$":
            compose_vars.add(m.group(1) or m.group(4))
    doc = deep_interpolate(yaml_docs[r][0])
    is_base = r == base_compose
    services = doc.get("services") or {}
    all_services = set(base_services) | set(services)
    volumes = set((base.get("volumes") or {})) | set((doc.get("volumes") or {}))
    secrets = set((base.get("secrets") or {})) | set((doc.get("secrets") or {}))
    here = os.path.dirname(os.path.join(ROOT, r))
    for name, svc in services.items():
        where = f"services.{name}"
        svc = svc or {}
        if not is_base and name not in base_services and not (svc.get("image") or svc.get("build")):
            err(r, f"{where} is no service of {base_compose} and has no image or build")
        deps = svc.get("depends_on") or {}
        for d in deps if isinstance(deps, (list, dict)) else []:
            if d not in all_services:
                err(r, f"{where}.depends_on names {d!r}, which is no service")
        for s in svc.get("secrets") or []:
            sname = s if isinstance(s, str) else s.get("source")
            if sname not in secrets:
                err(r, f"{where}.secrets names {sname!r}, which is not declared under secrets:")
        config_path = None
        for v in svc.get("volumes") or []:
            if isinstance(v, dict):
                src, dst, kind = v.get("source"), v.get("target"), v.get("type")
            else:
                parts = str(v).split(":")
                src, dst = parts[0], (parts[1] if len(parts) > 1 else parts[0])
                kind = "bind" if src.startswith((".", "/", "~")) else "volume"
            if kind == "bind":
                path = os.path.normpath(os.path.join(here, src))
                if not os.path.exists(path):
                    err(r, f"{where}.volumes mounts {src}, which does not exist ({rel(path)})")
                if dst == "/app/shoplake.toml":
                    config_path = rel(path)
            elif kind == "volume" and src not in volumes:
                err(r, f"{where}.volumes uses volume {src!r}, which is not declared under volumes:")
        build = svc.get("build")
        if build:
            ctx = build if isinstance(build, str) else build.get("context", ".")
            ctx_path = os.path.normpath(os.path.join(here, ctx))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if not os.path.isdir(ctx_path):
                err(r, f"{where}.build.context {ctx} is not a directory")
            elif not os.path.isfile(os.path.join(ctx_path, dockerfile)):
                err(r, f"{where}.build: {dockerfile} not found in {rel(ctx_path)}")
        shoplake = is_shoplake_image(svc.get("image")) or (not is_base and name in base_shoplake)
        env = compose_env(svc)
        for k, v in env.items():
            env_entries.append(
                {"file": r, "where": f"{where}.environment", "key": k, "value": v,
                 "source": "literal"}
            )
        if not shoplake:
            continue
        if config_path:
            configs.append({"file": r, "where": where, "path": config_path, "text": None})
        args = compose_command(svc.get("command"))
        if args is None and is_base:
            args = ["run"]  # the image's CMD
        if args is None:
            continue
        if args and args[0] in ("shoplake", "/usr/local/bin/shoplake"):
            args = args[1:]
        processes.append(
            {"file": r, "where": where, "args": args, "env": env,
             "config": config_path or ("deploy/shoplake.toml" if is_base else None),
             "config_text": None, "whole": is_base}
        )

# ---------------------------------------------------------------------------------------
# docker compose: the lake on MinIO.
#
# docker-compose.yml keeps the lake on its `minio` service: `minio-init` makes the bucket
# once MinIO is healthy, and every shoplake service that opens the lake (all but the
# sandbox) reads s3://<that bucket>/… through MinIO with MinIO's credentials, starts only
# once minio-init completed, and keeps tokens and run state on a volume at /data. An
# override that moves MinIO to a profile (off by default) must also drop every dependency
# on it (`depends_on: !override` or `!reset`: compose merges a plain depends_on with the
# base file's, and refuses to start a service whose dependency is disabled) and point the
# lake elsewhere.

OBJECT_STORE_URI = re.compile(r"^(s3|s3a|gs|az|adl|azure|abfs|abfss)://[^/]+")
S3_ENV = ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]


def command_of(args):
    """The shoplake command of a command line (after global flags), like deploy.rs's."""
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("--config", "--data-dir", "--log-format"):
            i += 2
        elif a.startswith("-"):
            i += 1
        else:
            return a
    return ""


def service_args(svc):
    args = compose_command(svc.get("command")) or ["run"]
    if args and args[0] in ("shoplake", "/usr/local/bin/shoplake"):
        args = args[1:]
    return args


def opens_lake(svc):
    """A shoplake service that opens the lake: every one but the sandbox."""
    return command_of(service_args(svc)) != "sandbox"


def dep_names(deps):
    return set(deps) if isinstance(deps, (dict, list)) else set()


def dep_condition(deps, name):
    if isinstance(deps, dict) and name in deps:
        return (deps.get(name) or {}).get("condition", "service_started")
    if isinstance(deps, list) and name in deps:
        return "service_started"
    return None


def mounts_data(svc):
    for v in svc.get("volumes") or []:
        dst = v.get("target") if isinstance(v, dict) else (str(v).split(":") + [""])[1]
        if dst == "/data":
            return True
    return False


minio = base_services.get("minio")
minio_init = base_services.get("minio-init")
bucket = None
minio_env = {}
if not minio:
    err(base_compose, "no `minio` service: the lake's object store (S3 API on :9000)")
else:
    minio_env = compose_env(minio)
    if "minio" not in str(minio.get("image", "")):
        err(base_compose, f"services.minio runs {minio.get('image')!r}, not a MinIO image")
    if not minio.get("healthcheck"):
        err(base_compose, "services.minio has no healthcheck (minio-init waits for service_healthy)")
if not minio_init:
    err(base_compose, "no `minio-init` service: the one-shot that makes the lake's bucket")
else:
    if dep_condition(minio_init.get("depends_on"), "minio") != "service_healthy":
        err(base_compose, "services.minio-init must depend on minio with condition service_healthy")
    if minio_init.get("restart") not in ("no", False):
        err(base_compose, "services.minio-init is a one-shot: restart must be \"no\"")
    words = (compose_command(minio_init.get("entrypoint")) or []) + (
        compose_command(minio_init.get("command")) or []
    )
    m = re.search(r"\bmc\s+mb\b[^&;|]*?\s[\w.-]+/([a-z0-9][a-z0-9.-]{2,62})\b", " ".join(words))
    if m:
        bucket = m.group(1)
    else:
        err(base_compose, "services.minio-init makes no bucket (`mc mb <alias>/<bucket>`)")

lake_commands = set()
for name, svc in base_services.items():
    if name not in base_shoplake or not opens_lake(svc):
        continue
    where = f"services.{name}"
    lake_commands.add(command_of(service_args(svc)))
    env = compose_env(svc)
    uri = env.get("SHOPLAKE_WAREHOUSE__URI") or ""
    if not uri.startswith("s3://"):
        err(base_compose, f"{where}: SHOPLAKE_WAREHOUSE__URI is {uri!r}: the lake is on MinIO, s3://<bucket>/<prefix>")
    elif bucket and uri[len("s3://"):].split("/")[0] != bucket:
        err(base_compose, f"{where}: the lake {uri} is not in the bucket minio-init makes ({bucket})")
    for k in S3_ENV:
        if not env.get(k):
            err(base_compose, f"{where}: {k} is not set (the lake's S3 options come from AWS_*)")
    endpoint = env.get("AWS_ENDPOINT_URL") or ""
    if endpoint and not re.match(r"^https?://minio(:\d+)?/?$", endpoint):
        err(base_compose, f"{where}: AWS_ENDPOINT_URL is {endpoint!r}, not the minio service")
    if endpoint.startswith("http://") and str(env.get("AWS_ALLOW_HTTP", "")).lower() != "true":
        err(base_compose, f"{where}: AWS_ENDPOINT_URL is plain http but AWS_ALLOW_HTTP is not \"true\"")
    for k, mk in (("AWS_ACCESS_KEY_ID", "MINIO_ROOT_USER"), ("AWS_SECRET_ACCESS_KEY", "MINIO_ROOT_PASSWORD")):
        if minio and env.get(k) != minio_env.get(mk):
            err(base_compose, f"{where}: {k} is not minio's {mk} (with no host variables set)")
    if dep_condition(svc.get("depends_on"), "minio-init") != "service_completed_successfully":
        err(base_compose, f"{where} opens the lake but does not depend on minio-init with condition service_completed_successfully (the bucket must exist first)")
    if not mounts_data(svc):
        err(base_compose, f"{where} mounts no volume at /data (tokens and run state)")
for cmd in ("auth", "scheduler", "worker", "serve"):
    if cmd not in lake_commands:
        err(base_compose, f"no shoplake service running `{cmd}` opens the lake")

for r in compose_files:
    if r == base_compose:
        continue
    raw_services = (yaml_docs[r][0] or {}).get("services") or {}
    services = deep_interpolate(yaml_docs[r][0]).get("services") or {}
    off = {n for n, svc in services.items() if (svc or {}).get("profiles")}
    if not off:
        continue
    for name, bsvc in base_services.items():
        osvc = services.get(name) or {}
        if name in off:
            continue
        if "depends_on" in osvc:
            raw_deps = (raw_services.get(name) or {}).get("depends_on")
            deps = dep_names(osvc["depends_on"])
            if not isinstance(raw_deps, (Replaced, ReplacedList)):
                deps |= dep_names(bsvc.get("depends_on"))
        else:
            deps = dep_names(bsvc.get("depends_on"))
        for d in sorted(deps & off):
            err(r, f"services.{name} still depends on {d}, which this file moves to a profile (off by default): compose refuses to start {name}; replace its depends_on with `!override`")
        merged = {**bsvc, **osvc}
        if name in base_shoplake and opens_lake(merged) and "minio" in off:
            env = {**compose_env(bsvc), **compose_env(osvc)}
            uri = env.get("SHOPLAKE_WAREHOUSE__URI") or ""
            if OBJECT_STORE_URI.match(uri) and "minio" in (env.get("AWS_ENDPOINT_URL") or ""):
                err(r, f"services.{name}: the lake stays on MinIO ({uri}), which this file turns off")

# ---------------------------------------------------------------------------------------
# Kubernetes.

k8s_files = sorted(r for r in yaml_docs if r.startswith("deploy/k8s/"))
objects = []  # (file, doc)
kustomizations = []
for r in k8s_files:
    collect_names(r)
    for d in yaml_docs[r]:
        if not isinstance(d, dict):
            continue
        # Kustomizations and kustomize Components (optional parts a kustomization lists
        # under `components:`) are no Kubernetes objects.
        if d.get("kind") in ("Kustomization", "Component"):
            kustomizations.append((r, d))
        elif d.get("apiVersion") and d.get("kind"):
            objects.append((r, d))

secret_keys = set()
secrets_by_name = {}  # Secret name -> its keys
configmaps = {}  # name -> {key: text or repo path}
for r, d in objects:
    name = (d.get("metadata") or {}).get("name")
    if d["kind"] == "Secret":
        keys = secrets_by_name.setdefault(name, [])
        for k in list((d.get("stringData") or {})) + list((d.get("data") or {})):
            secret_keys.add((name, k))
            keys.append(k)
    if d["kind"] == "ConfigMap":
        configmaps[name] = {k: ("text", v) for k, v in (d.get("data") or {}).items()}

kustomization_resources = {}  # kustomization file -> repo paths of its resource files
for r, k in kustomizations:
    here = os.path.dirname(os.path.join(ROOT, r))
    kustomization_resources[r] = set()
    for res in k.get("resources") or []:
        if not os.path.exists(os.path.join(here, res)):
            err(r, f"resources lists {res}, which does not exist")
        kustomization_resources[r].add(rel(os.path.normpath(os.path.join(here, res))))
    for comp in k.get("components") or []:
        kfile = rel(os.path.normpath(os.path.join(here, comp, "kustomization.yaml")))
        kinds = [d.get("kind") for d in yaml_docs.get(kfile, []) if isinstance(d, dict)]
        if "Component" not in kinds:
            err(r, f"components lists {comp}, which has no kustomization.yaml of kind Component ({kfile})")
    for pt in k.get("patches") or []:
        if pt.get("path") and not os.path.isfile(os.path.join(here, pt["path"])):
            err(r, f"patches names {pt['path']}, which does not exist")
    for gen in k.get("configMapGenerator") or []:
        entries = configmaps.setdefault(gen["name"], {})
        for f in gen.get("files") or []:
            key, _, src = f.partition("=") if "=" in f else (os.path.basename(f), "", f)
            path = os.path.join(here, src)
            if not os.path.isfile(path):
                err(r, f"configMapGenerator {gen['name']} names {src}, which does not exist")
            entries[key] = ("path", rel(path))
        for lit in gen.get("literals") or []:
            key, _, v = lit.partition("=")
            entries[key] = ("text", v)

deployments = {}
for r, d in objects:
    if d["kind"] in ("Deployment", "StatefulSet"):
        deployments[d["metadata"]["name"]] = (
            d["kind"],
            ((d["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {},
        )
claims = {d["metadata"]["name"] for _, d in objects if d["kind"] == "PersistentVolumeClaim"}

# Patches of the kustomizations and components: each targets an object defined here, and
# the environment variables an inline JSON patch adds to a container are checked like any
# other (`patch_env`: kustomization file -> [(target name, variable, value)]).
patch_env = {}
for r, k in kustomizations:
    patch_env[r] = []
    for i, pt in enumerate(k.get("patches") or []):
        target = pt.get("target") or {}
        where = f"patches[{i}] ({target.get('kind')} {target.get('name')})"
        if target.get("name") and not any(
            d["kind"] == target.get("kind") and d["metadata"]["name"] == target["name"]
            for _, d in objects
        ):
            err(r, f"{where}: no {target.get('kind')} {target['name']!r} is defined here")
        text = pt.get("patch")
        if not isinstance(text, str):
            continue
        try:
            ops = yaml.safe_load(text)
        except Exception as e:  # noqa: BLE001
            err(r, f"{where}: the patch is not valid YAML: {e}")
            continue
        for op in ops if isinstance(ops, list) else []:
            value = op.get("value") if isinstance(op, dict) else None
            if "/env" in str(op.get("path", "")) and isinstance(value, dict) and "name" in value:
                v = value.get("value")
                env_entries.append(
                    {"file": r, "where": where, "key": value["name"],
                     "value": None if v is None else str(v), "source": "literal"}
                )
                patch_env[r].append((target.get("name"), value["name"], v))


def pod_spec(d):
    kind = d["kind"]
    spec = d.get("spec") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return (spec.get("template") or {}).get("spec")
    if kind == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
    if kind == "Pod":
        return spec
    return None


for r, d in objects:
    name = d["metadata"]["name"]
    if d["kind"] == "HorizontalPodAutoscaler":
        target = d["spec"]["scaleTargetRef"]
        if target.get("name") not in deployments:
            err(r, f"HPA {name} scales {target.get('name')!r}, which is no Deployment here")
    if d["kind"] == "Service":
        sel = (d.get("spec") or {}).get("selector") or {}
        if not any(all(labels.get(k) == v for k, v in sel.items()) for _, labels in deployments.values()):
            err(r, f"Service {name} selects {sel}, which matches no pod template here")
    spec = pod_spec(d)
    if not spec:
        continue
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for v in volumes.values():
        if "persistentVolumeClaim" in v and v["persistentVolumeClaim"]["claimName"] not in claims:
            err(r, f"{d['kind']} {name}: volume {v['name']} claims {v['persistentVolumeClaim']['claimName']!r}, which is no PVC here")
        if "configMap" in v and v["configMap"]["name"] not in configmaps:
            err(r, f"{d['kind']} {name}: volume {v['name']} names ConfigMap {v['configMap']['name']!r}, which is not generated or defined here")
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        where = f"{d['kind']} {name}, container {c['name']}"
        env = {}
        sources = {}
        # envFrom first: `env` wins over it, as in Kubernetes.
        for ef in c.get("envFrom") or []:
            prefix = ef.get("prefix") or ""
            if "configMapRef" in ef:
                ref = ef["configMapRef"]
                cm = configmaps.get(ref.get("name"))
                if cm is None:
                    if not ref.get("optional"):
                        err(r, f"{where}: envFrom names ConfigMap {ref.get('name')!r}, which is not generated or defined here")
                    continue
                items = [(k, v if kind == "text" else None, "configmap") for k, (kind, v) in cm.items()]
            elif "secretRef" in ef:
                ref = ef["secretRef"]
                keys = secrets_by_name.get(ref.get("name"))
                if keys is None:
                    if not ref.get("optional"):
                        err(r, f"{where}: envFrom names Secret {ref.get('name')!r}, which no Secret manifest here defines")
                    continue
                items = [(k, None, "secret") for k in keys]
            else:
                continue
            for k, v, source in items:
                key = prefix + k
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                    err(r, f"{where}: envFrom {source} key {k!r} is no environment variable name")
                    continue
                env[key] = None if v is None else str(v)
                sources[key] = source
                env_entries.append(
                    {"file": r, "where": f"{where} (envFrom)", "key": key,
                     "value": env[key], "source": source}
                )
        for e in c.get("env") or []:
            vf = e.get("valueFrom") or {}
            if "value" in e:
                source, value = "literal", str(e["value"])
            elif "secretKeyRef" in vf:
                ref = vf["secretKeyRef"]
                source, value = "secret", None
                if (ref["name"], ref["key"]) not in secret_keys:
                    err(r, f"{where}: env {e['name']} reads Secret {ref['name']} key {ref['key']}, which no Secret manifest here defines")
            elif "configMapKeyRef" in vf:
                ref = vf["configMapKeyRef"]
                source, value = "configmap", None
                entry = (configmaps.get(ref["name"]) or {}).get(ref["key"])
                if entry is None and not ref.get("optional"):
                    err(r, f"{where}: env {e['name']} reads ConfigMap {ref['name']} key {ref['key']}, which is not generated or defined here")
                elif entry is not None and entry[0] == "text":
                    value = str(entry[1])
            elif "fieldRef" in vf:
                source, value = "field", None
            else:
                source, value = "literal", None
            env[e["name"]] = value
            sources[e["name"]] = source
            env_entries.append({"file": r, "where": where, "key": e["name"], "value": value, "source": source})
        for m in c.get("volumeMounts") or []:
            if m["name"] not in volumes:
                err(r, f"{where}: mounts volume {m['name']!r}, which the pod does not define")
        if not is_shoplake_image(c.get("image")):
            continue
        # The lake is on object storage: its URI from a ConfigMap (or the manifest), the
        # store's credentials from a Secret, never a literal in a manifest. The volume
        # keeps tokens and run state only.
        uri = env.get("SHOPLAKE_WAREHOUSE__URI")
        if not uri or not OBJECT_STORE_URI.match(uri):
            err(r, f"{where}: SHOPLAKE_WAREHOUSE__URI is {uri!r}: the lake must be an object store URI (s3://bucket/prefix) from the ConfigMap")
        elif sources.get("SHOPLAKE_WAREHOUSE__URI") not in ("configmap", "literal"):
            err(r, f"{where}: SHOPLAKE_WAREHOUSE__URI comes from a {sources.get('SHOPLAKE_WAREHOUSE__URI')}; take it from the ConfigMap")
        elif uri.startswith(("s3://", "s3a://")):
            aws = {k for k in env if k.startswith("AWS_")}
            if "AWS_REGION" not in aws:
                err(r, f"{where}: an s3:// lake without AWS_REGION (Secret shoplake-s3, envFrom)")
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            if k in env and sources.get(k) != "secret":
                err(r, f"{where}: {k} must come from a Secret, not a {sources.get(k)}")
        config_path, config_text = None, None
        for m in c.get("volumeMounts") or []:
            if m.get("mountPath") == "/app/shoplake.toml":
                vol = volumes.get(m["name"]) or {}
                cm = (vol.get("configMap") or {}).get("name")
                entry = (configmaps.get(cm) or {}).get(m.get("subPath", "shoplake.toml"))
                if entry is None:
                    err(r, f"{where}: /app/shoplake.toml comes from ConfigMap {cm!r} key {m.get('subPath')!r}, which is not defined here")
                elif entry[0] == "path":
                    config_path = entry[1]
                else:
                    config_text = entry[1]
        command = [str(x) for x in c.get("command") or []]
        args = [str(x) for x in c.get("args") or []]
        if command:
            if os.path.basename(command[0]) != "shoplake":
                continue  # not a shoplake command line (the toolbox's sleep)
            args = command[1:] + args

        def expand(a, env=env):
            return re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                lambda m: env.get(m.group(1)) or f"sample-{m.group(1).lower()}",
                a,
            )

        processes.append(
            {"file": r, "where": where, "args": [expand(a) for a in args] or ["run"],
             "env": env, "config": config_path, "config_text": config_text, "whole": True}
        )

for name, entries in configmaps.items():
    for key, (kind, v) in entries.items():
        if key.endswith(".toml"):
            configs.append(
                {"file": "deploy/k8s/kustomization.yaml" if kind == "path" else "deploy/k8s",
                 "where": f"ConfigMap {name} key {key}",
                 "path": v if kind == "path" else None, "text": v if kind == "text" else None}
            )

# One table-maintenance mechanism per deployment: the scheduler's `[jobs] maintain`
# (on by default) or a CronJob running `shoplake maintain`, never both. A maintain CronJob
# must come from a kustomization or component that also turns the scheduler's off
# (SHOPLAKE_JOBS__MAINTAIN="" on shoplake-scheduler), or the config it mounts must say
# maintain = "".


def maintain_off_in_config(cm_name):
    for kind, v in (configmaps.get(cm_name) or {}).values():
        if tomllib is None:
            return False
        try:
            text = open(os.path.join(ROOT, v), encoding="utf-8").read() if kind == "path" else v
            cfg = tomllib.loads(text)
        except Exception:  # noqa: BLE001 - the Rust test reports configs that do not load
            continue
        if str((cfg.get("jobs") or {}).get("maintain", "1d")).strip() == "":
            return True
    return False


for r, d in objects:
    if d["kind"] != "CronJob":
        continue
    spec = pod_spec(d) or {}
    runs_maintain = any(
        is_shoplake_image(c.get("image"))
        and "maintain" in [str(x) for x in (c.get("command") or [])[1:] + (c.get("args") or [])]
        for c in spec.get("containers") or []
    )
    if not runs_maintain:
        continue
    name = d["metadata"]["name"]
    listed = [k for k, res in kustomization_resources.items() if r in res]
    if not listed:
        err(r, f"CronJob {name} runs `shoplake maintain` but no kustomization or component lists {r}")
    cms = {(v.get("configMap") or {}).get("name") for v in spec.get("volumes") or []} - {None}
    for k in listed:
        off = any(
            t == "shoplake-scheduler" and key == "SHOPLAKE_JOBS__MAINTAIN" and str(v).strip() == ""
            for t, key, v in patch_env.get(k, [])
        )
        if not off and not any(maintain_off_in_config(cm) for cm in cms):
            err(k, f"deploys CronJob {name} (`shoplake maintain`) while the scheduler's [jobs] maintain stays on: set SHOPLAKE_JOBS__MAINTAIN=\"\" on shoplake-scheduler (a patch) or maintain = \"\" in the config, so maintenance runs one way only")

# ---------------------------------------------------------------------------------------
# Grafana: every panel's data source is provisioned; dashboard uids are unique.

provisioned = set()
for r, docs in yaml_docs.items():
    if r.startswith("deploy/grafana/provisioning/datasources/"):
        for d in docs:
            for ds in d.get("datasources") or []:
                provisioned.add(ds.get("uid"))
uids = {}
for r, dash in json_docs.items():
    if not r.startswith("deploy/grafana/dashboards/"):
        continue
    uid = dash.get("uid")
    if uid in uids:
        err(r, f"dashboard uid {uid!r} is also {uids[uid]}'s")
    uids[uid] = r
    for p in dash.get("panels") or []:
        if p.get("type") == "row":
            continue
        used = {
            ds.get("uid")
            for ds in [p.get("datasource")] + [t.get("datasource") for t in p.get("targets") or []]
            if isinstance(ds, dict)
        }
        for uid in sorted(used - provisioned, key=str):
            err(r, f"panel {p.get('title')!r} uses data source uid {uid!r}, which provisioning/datasources does not define ({sorted(provisioned)})")
        if not p.get("targets"):
            err(r, f"panel {p.get('title')!r} has no query")

# ---------------------------------------------------------------------------------------
# Prometheus: rule files load as rule groups.

prom = yaml_docs.get("deploy/prometheus/prometheus.yml", [{}])
if not prom or not prom[0].get("scrape_configs"):
    err("deploy/prometheus/prometheus.yml", "no scrape_configs")
rule_files = [r for r in yaml_docs if r.startswith("deploy/prometheus/rules/")]
if not rule_files:
    err("deploy/prometheus/rules", "no rule files")
for r in rule_files:
    for d in yaml_docs[r]:
        for g in d.get("groups") or []:
            for rule in g.get("rules") or []:
                label = rule.get("alert") or rule.get("record")
                if not label or not rule.get("expr"):
                    err(r, f"group {g.get('name')}: a rule without alert/record or expr: {rule}")
                if rule.get("alert") and not (rule.get("labels") or {}).get("severity"):
                    err(r, f"alert {label} has no severity label")

print(
    json.dumps(
        {
            "errors": errors,
            "parsed": {"yaml": sorted(yaml_docs), "json": sorted(json_docs)},
            "env": env_entries,
            "names": names,
            "processes": processes,
            "configs": configs,
            "compose_vars": sorted(compose_vars),
        },
        indent=1,
    )
)
