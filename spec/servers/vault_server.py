#!/usr/bin/env python3
# SPDX-License-Identifier: MIT (see LICENSE)
"""A fake Vault server: KV v2, token auth (create/renew-self/lookup-self/revoke-self),
database-style dynamic secrets with leases, sys/leases and sys/health.

Written from the Vault API docs (secret/kv/kv-v2, auth/token, system/leases,
system/health, concepts/lease) and the KV v2 plugin's path_data.go; README.md lists
what it leaves out.
Usage: vault_server.py --port 0 [--token ROOT] [--mount secret] [--lease-ttl S] [--lease-max-ttl S]
"""

import json
import secrets
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import unquote

from faults import FaultyHandler, base_arguments, json_response, parse_go_duration, serve

SYSTEM_TTL = 768 * 3600.0  # default_lease_ttl and max_lease_ttl out of the box: 768h
MAX_VERSIONS = 10  # KV v2 keeps 10 versions unless configured otherwise
NOT_RENEWABLE = "lease not found or lease is not renewable"


def parse_ttl(value):
    """Vault's ParseDurationSecond: seconds as a number or numeric string, or a Go duration."""
    if isinstance(value, bool):
        raise ValueError("invalid duration %r" % value)
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text or 0)
    except ValueError:
        return parse_go_duration(text)


def whole_seconds(seconds):
    """TTLs go on the wire as integer seconds; keep a short positive TTL from reading as 0 (none)."""
    return 0 if seconds <= 0 else max(1, int(round(seconds, 3)))


def go_duration(seconds):
    """Format like Go's Duration.String() for whole seconds: 1h0m5s, 2m0s, 7s."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return "%dh%dm%ds" % (hours, minutes, secs)
    return "%dm%ds" % (minutes, secs) if minutes else "%ds" % secs


def capped_warning(requested, allowed):
    return 'TTL of "%s" exceeded the effective max_ttl of "%s"; TTL value is capped accordingly' % (
        go_duration(requested), go_duration(allowed))


def iso(wall):
    return datetime.fromtimestamp(wall, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def random_id(length=24):
    return secrets.token_urlsafe(length)[:length]


class Tokens:
    """The token store: the root token plus service tokens with TTL, max TTL and period."""

    def __init__(self, root):
        self.lock = threading.Lock()
        now = time.time()
        self.tokens = {root: {
            "id": root, "accessor": random_id(), "policies": ["root"], "created": now,
            "creation_ttl": 0, "explicit_max_ttl": 0, "period": 0, "renewable": False,
            "expires": None, "max_expires": None, "path": "auth/token/root", "orphan": True,
        }}

    def lookup(self, token_id):
        """The live token, or None; an expired token is revoked on sight, as Vault's timer would."""
        with self.lock:
            token = self.tokens.get(token_id)
            if token and token["expires"] is not None and time.time() >= token["expires"]:
                del self.tokens[token_id]
                return None
            return token

    def create(self, parent, ttl, explicit_max_ttl, period, renewable, policies):
        now = time.time()
        ttl = period or ttl or SYSTEM_TTL
        limit = min(explicit_max_ttl or SYSTEM_TTL, SYSTEM_TTL)
        token = {
            "id": "hvs." + random_id(), "accessor": random_id(), "created": now,
            "policies": policies or list(parent["policies"]), "creation_ttl": min(ttl, limit),
            "explicit_max_ttl": explicit_max_ttl, "period": period, "renewable": renewable,
            "expires": now + min(ttl, limit),
            # A periodic token has no max TTL unless one is set explicitly.
            "max_expires": None if period and not explicit_max_ttl else now + limit,
            "path": "auth/token/create", "orphan": False,
        }
        with self.lock:
            self.tokens[token["id"]] = token
        return token

    def renew(self, token, increment):
        """New TTL from now (increment is advisory), clipped at the max TTL: (error, ttl, warnings)."""
        if token["expires"] is None:
            return NOT_RENEWABLE, 0, None
        if not token["renewable"]:
            return "lease is not renewable", 0, None
        return _extend(token, token["period"] or increment or token["creation_ttl"], self.lock)

    def revoke(self, token_id):
        with self.lock:
            self.tokens.pop(token_id, None)


def _extend(record, requested, lock):
    """Move record's expiry to now + requested, never past its max: (None, ttl, warnings)."""
    with lock:
        now = time.time()
        expires = now + requested
        warnings = None
        if record["max_expires"] is not None and expires > record["max_expires"]:
            expires = record["max_expires"]
            warnings = [capped_warning(requested, max(0.0, expires - now))]
        record["expires"] = expires
        return None, expires - now, warnings


class Leases:
    """Leases of the database-style dynamic secrets."""

    def __init__(self, ttl, max_ttl):
        self.lock = threading.Lock()
        self.ttl = ttl
        self.max_ttl = max_ttl
        self.leases = {}

    def issue(self, role):
        now = time.time()
        ttl = min(self.ttl, self.max_ttl)
        lease = {
            "id": "database/creds/%s/%s" % (role, random_id()), "issued": now, "renewed": None,
            "ttl": ttl, "expires": now + ttl, "max_expires": now + self.max_ttl,
        }
        with self.lock:
            self.leases[lease["id"]] = lease
        return lease

    def live(self, lease_id):
        """The lease if it has not expired; expired ones are revoked, as Vault's expiration manager does."""
        with self.lock:
            lease = self.leases.get(lease_id)
            if lease and time.time() >= lease["expires"]:
                del self.leases[lease_id]
                return None
            return lease

    def renew(self, lease_id, increment):
        lease = self.live(lease_id)
        if lease is None:
            return NOT_RENEWABLE, 0, None
        lease["renewed"] = time.time()
        return _extend(lease, increment or self.ttl, self.lock)

    def revoke(self, lease_id=None):
        with self.lock:
            if lease_id is None:
                self.leases.clear()
            else:
                self.leases.pop(lease_id, None)


class KVv2:
    """A KV version 2 mount: versions with soft delete, undelete, destroy and metadata."""

    def __init__(self):
        self.lock = threading.Lock()
        self.secrets = {}

    def write(self, path, data, cas):
        """Store a new version: (error, version metadata)."""
        with self.lock:
            secret = self.secrets.get(path)
            current = secret["current_version"] if secret else 0
            if cas is not None and cas != current:
                return "check-and-set parameter did not match the current version", None
            now = iso(time.time())
            if secret is None:
                secret = self.secrets[path] = {"created_time": now, "current_version": 0,
                                               "oldest_version": 0, "versions": {}}
            number = current + 1
            secret["versions"][number] = {"created_time": now, "deletion_time": "",
                                          "destroyed": False, "data": data}
            secret["current_version"] = number
            secret["updated_time"] = now
            if len(secret["versions"]) > MAX_VERSIONS:
                del secret["versions"][min(secret["versions"])]
                secret["oldest_version"] = min(secret["versions"])
            return None, _version_meta(secret["versions"][number], number)

    def read(self, path, number):
        """(version metadata, data or None when deleted/destroyed); None when there is no such version."""
        with self.lock:
            secret = self.secrets.get(path)
            number = number or (secret["current_version"] if secret else 0)
            version = secret["versions"].get(number) if secret else None
            if version is None:
                return None
            gone = version["deletion_time"] or version["destroyed"]
            return _version_meta(version, number), None if gone else dict(version["data"])

    def mark(self, path, numbers, undelete=False, destroy=False):
        """Undelete or destroy the given versions."""
        with self.lock:
            secret = self.secrets.get(path)
            for number in numbers if secret else ():
                version = secret["versions"].get(number)
                if version is None or version["destroyed"]:
                    continue
                if destroy:
                    version.update(destroyed=True, data=None)
                elif undelete:
                    version["deletion_time"] = ""

    def delete_latest(self, path):
        with self.lock:
            secret = self.secrets.get(path)
            version = secret["versions"].get(secret["current_version"]) if secret else None
            if version is not None and not version["deletion_time"]:
                version["deletion_time"] = iso(time.time())

    def metadata(self, path):
        with self.lock:
            secret = self.secrets.get(path)
            if secret is None:
                return None
            versions = {str(n): {k: v[k] for k in ("created_time", "deletion_time", "destroyed")}
                        for n, v in secret["versions"].items()}
            return {
                "cas_required": False, "created_time": secret["created_time"],
                "current_version": secret["current_version"], "custom_metadata": None,
                "delete_version_after": "0s", "max_versions": 0,
                "oldest_version": secret["oldest_version"], "updated_time": secret["updated_time"],
                "versions": versions,
            }

    def delete_all(self, path):
        with self.lock:
            self.secrets.pop(path, None)

    def list(self, folder):
        """Names directly under folder; sub-folders end in '/'."""
        folder = folder if folder == "" or folder.endswith("/") else folder + "/"
        with self.lock:
            names = set()
            for path in self.secrets:
                if path.startswith(folder):
                    head, slash, _ = path[len(folder):].partition("/")
                    names.add(head + slash)
            return sorted(names)


def _remainder(relative, prefix):
    """What follows prefix at a segment boundary ("" for prefix itself), or None elsewhere."""
    if relative == prefix.rstrip("/"):
        return ""
    head = prefix if prefix.endswith("/") else prefix + "/"
    return relative[len(head):] if relative.startswith(head) else None


def _version_meta(version, number):
    return {"created_time": version["created_time"], "custom_metadata": None,
            "deletion_time": version["deletion_time"], "destroyed": version["destroyed"],
            "version": number}


class VaultState:
    def __init__(self, root, mount, lease_ttl, lease_max_ttl):
        self.mount = mount
        self.tokens = Tokens(root)
        self.leases = Leases(lease_ttl, lease_max_ttl)
        self.kv = KVv2()
        self.sealed = False

    def stop(self):
        pass  # nothing blocks in Vault's API


def envelope(data=None, auth=None, lease_id="", lease_duration=0, warnings=None):
    """The response body every Vault API call shares; only leased secrets are renewable."""
    return {
        "request_id": str(uuid.uuid4()), "lease_id": lease_id, "renewable": bool(lease_id),
        "lease_duration": whole_seconds(lease_duration), "data": data, "wrap_info": None,
        "warnings": warnings, "auth": auth,
    }


class VaultHandler(FaultyHandler):
    server_version = "Vault-fake"
    default_messages = {500: "injected failure", 429: "request rate limited", 403: "permission denied"}

    @property
    def state(self):
        return self.server.state

    def error_response(self, status, message):
        return json_response(status, {"errors": [message] if message else []})

    def route(self, method, path, query, body):
        if path == "/v1/sys/health":
            return self._health()
        if self.state.sealed:
            return self.error_response(503, "Vault is sealed")
        try:
            payload = json.loads(body) if body.strip() else {}
            if not isinstance(payload, dict):
                raise ValueError("expected a JSON object")
        except ValueError as err:
            return self.error_response(400, "failed to parse JSON input: %s" % err)
        token = self.state.tokens.lookup(self._client_token())
        if token is None:
            return self.error_response(403, "permission denied")
        if method == "GET" and query.get("list", [""])[0] == "true":
            method = "LIST"
        relative = unquote(path[len("/v1/"):] if path.startswith("/v1/") else path)
        return self._dispatch(method, relative, payload, token, query)

    def _client_token(self):
        token = self.headers.get("X-Vault-Token", "")
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        return token or (value.strip() if scheme.lower() == "bearer" else "")

    def _routes(self):
        """(path prefix, takes a path remainder, methods, handler)."""
        mount = self.state.mount
        return [
            ("auth/token/create", False, ("POST", "PUT"), self._token_create),
            ("auth/token/renew-self", False, ("POST", "PUT"), self._token_renew_self),
            ("auth/token/lookup-self", False, ("GET", "POST"), self._token_lookup_self),
            ("auth/token/revoke-self", False, ("POST", "PUT"), self._token_revoke_self),
            ("sys/leases/renew", True, ("POST", "PUT"), self._lease_renew),
            ("sys/leases/lookup", False, ("POST", "PUT"), self._lease_lookup),
            ("sys/leases/revoke", True, ("POST", "PUT"), self._lease_revoke),
            ("database/creds/", True, ("GET",), self._creds),
            (mount + "/data/", True, ("GET", "POST", "PUT", "DELETE"), self._kv_data),
            (mount + "/metadata/", True, ("GET", "LIST", "DELETE"), self._kv_metadata),
            (mount + "/undelete/", True, ("POST", "PUT"), self._kv_undelete),
            (mount + "/destroy/", True, ("POST", "PUT"), self._kv_destroy),
        ]

    def _dispatch(self, method, relative, payload, token, query):
        for prefix, takes_rest, methods, handler in self._routes():
            rest = _remainder(relative, prefix)
            if rest is None or (rest and not takes_rest):
                continue
            if method not in methods:
                return self.error_response(405, "unsupported operation")
            try:
                return handler(method, rest, payload, token, query)
            except (ValueError, TypeError) as err:
                return self.error_response(400, str(err))
        return self.no_route(relative)

    def no_route(self, relative):
        return self.error_response(404, 'no handler for route "%s". route entry not found.' % relative)

    def _health(self):
        sealed = self.state.sealed
        return json_response(503 if sealed else 200, {
            "initialized": True, "sealed": sealed, "standby": False, "performance_standby": False,
            "replication_performance_mode": "disabled", "replication_dr_mode": "disabled",
            "server_time_utc": int(time.time()), "version": "1.15.0+fake",
            "cluster_name": "vault-cluster-fake", "cluster_id": "00000000-0000-0000-0000-000000000000",
        })

    # --- tokens ---

    def _token_create(self, method, rest, payload, token, query):
        created = self.state.tokens.create(
            token, parse_ttl(payload.get("ttl", 0)), parse_ttl(payload.get("explicit_max_ttl", 0)),
            parse_ttl(payload.get("period", 0)), bool(payload.get("renewable", True)),
            payload.get("policies"))
        return json_response(200, envelope(auth=self._auth(created, created["creation_ttl"])))

    def _token_renew_self(self, method, rest, payload, token, query):
        error, ttl, warnings = self.state.tokens.renew(token, parse_ttl(payload.get("increment", 0)))
        if error:
            return self.error_response(400, error)
        return json_response(200, envelope(auth=self._auth(token, ttl), warnings=warnings))

    def _token_lookup_self(self, method, rest, payload, token, query):
        expires = token["expires"]
        return json_response(200, envelope(data={
            "accessor": token["accessor"], "creation_time": int(token["created"]),
            "creation_ttl": whole_seconds(token["creation_ttl"]), "display_name": "token",
            "entity_id": "", "expire_time": iso(expires) if expires else None,
            "explicit_max_ttl": whole_seconds(token["explicit_max_ttl"]), "id": token["id"],
            "issue_time": iso(token["created"]), "meta": None, "num_uses": 0,
            "orphan": token["orphan"], "path": token["path"],
            "period": whole_seconds(token["period"]) or None,
            "policies": token["policies"], "renewable": token["renewable"],
            "ttl": whole_seconds(expires - time.time()) if expires else 0, "type": "service",
        }))

    def _token_revoke_self(self, method, rest, payload, token, query):
        self.state.tokens.revoke(token["id"])
        return json_response(204, None)

    def _auth(self, token, ttl):
        return {
            "client_token": token["id"], "accessor": token["accessor"], "policies": token["policies"],
            "token_policies": token["policies"], "metadata": None, "lease_duration": whole_seconds(ttl),
            "renewable": token["renewable"], "entity_id": "", "token_type": "service",
            "orphan": token["orphan"], "mfa_requirement": None, "num_uses": 0,
        }

    # --- dynamic secrets and leases ---

    def _creds(self, method, role, payload, token, query):
        if not role or "/" in role:
            return self.no_route("database/creds/" + role)
        lease = self.state.leases.issue(role)
        data = {"username": "v-token-%s-%s" % (role, random_id(20)), "password": random_id(20)}
        return json_response(200, envelope(data=data, lease_id=lease["id"], lease_duration=lease["ttl"]))

    def _lease_renew(self, method, rest, payload, token, query):
        lease_id = payload.get("lease_id") or rest
        error, ttl, warnings = self.state.leases.renew(lease_id, parse_ttl(payload.get("increment", 0)))
        if error:
            return self.error_response(400, error)
        return json_response(200, envelope(lease_id=lease_id, lease_duration=ttl, warnings=warnings))

    def _lease_lookup(self, method, rest, payload, token, query):
        lease = self.state.leases.live(payload.get("lease_id", ""))
        if lease is None:
            return self.error_response(400, "invalid lease")
        return json_response(200, envelope(data={
            "id": lease["id"], "issue_time": iso(lease["issued"]), "expire_time": iso(lease["expires"]),
            "last_renewal": iso(lease["renewed"]) if lease["renewed"] else None,
            "renewable": True, "ttl": whole_seconds(lease["expires"] - time.time()),
        }))

    def _lease_revoke(self, method, rest, payload, token, query):
        self.state.leases.revoke(payload.get("lease_id") or rest)
        return json_response(204, None)

    # --- KV v2 ---

    def _kv_data(self, method, path, payload, token, query):
        kv = self.state.kv
        if not path or path.endswith("/"):
            return self.no_route(self.state.mount + "/data/" + path)
        if method == "GET":
            found = kv.read(path, int(query.get("version", ["0"])[0] or 0))
            if found is None:
                return self.error_response(404, None)
            metadata, data = found
            # A deleted or destroyed version is a 404 that still carries the whole body.
            return json_response(404 if data is None else 200,
                                 envelope(data={"data": data, "metadata": metadata}))
        if method == "DELETE":
            kv.delete_latest(path)
            return json_response(204, None)
        if not isinstance(payload.get("data"), dict):
            return self.error_response(400, "no data provided")
        options = payload.get("options") or {}
        try:
            cas = int(options["cas"]) if "cas" in options else None
        except (TypeError, ValueError):
            return self.error_response(400, "error parsing check-and-set parameter")
        error, metadata = kv.write(path, payload["data"], cas)
        if error:
            return self.error_response(400, error)
        return json_response(200, envelope(data=metadata))

    def _kv_metadata(self, method, path, payload, token, query):
        kv = self.state.kv
        if method == "LIST":
            keys = kv.list(path)
            if not keys:
                return self.error_response(404, None)
            return json_response(200, envelope(data={"keys": keys}))
        if method == "DELETE":
            kv.delete_all(path)
            return json_response(204, None)
        metadata = kv.metadata(path)
        return json_response(200, envelope(data=metadata)) if metadata else self.error_response(404, None)

    def _kv_undelete(self, method, path, payload, token, query):
        return self._kv_mark(path, payload, undelete=True)

    def _kv_destroy(self, method, path, payload, token, query):
        return self._kv_mark(path, payload, destroy=True)

    def _kv_mark(self, path, payload, **change):
        versions = payload.get("versions")
        if not versions:
            return self.error_response(400, "no version number provided")
        self.state.kv.mark(path, [int(v) for v in versions], **change)
        return json_response(204, None)

    # --- test control ---

    def control(self, name, spec):
        state = self.state
        if name == "clear":
            state.sealed = False
        elif name == "seal":
            state.sealed = bool(spec.get("sealed", True))
        elif name == "revoke_leases":
            state.leases.revoke()
        else:
            return False
        return True


def main():
    parser = base_arguments(__doc__.splitlines()[0])
    parser.add_argument("--token", default="root", help="the root token (never expires)")
    parser.add_argument("--mount", default="secret", help="where the KV v2 engine is mounted")
    parser.add_argument("--lease-ttl", type=float, default=3600.0, help="database creds lease TTL, seconds")
    parser.add_argument("--lease-max-ttl", type=float, default=86400.0,
                        help="database creds max TTL, seconds")
    args = parser.parse_args()
    state = VaultState(args.token, args.mount.strip("/"), args.lease_ttl, args.lease_max_ttl)
    return serve(VaultHandler, args.port, state, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
